"""The Solana half of a local pipeline (issue 22): `make demo` runs USDT
deposits on both chains through the same five stages with it.

It starts the validator as a service of the pipeline's own folder
(`deploy/local/services up solana`), makes a test USDT mint (6 decimals) held
by a depositor wallet, registers a deposit wallet per user with `zl-address
add-solana`, funds mint's payer and creates its durable nonce accounts, and
gives every stage the Solana settings; detect on Solana is a copy of its own
("sol-detect-0"). Its checks read the chain, not the pipeline's own records:
the deposits counted on chain (each registered account's transactions,
parsed), and each credited deposit's receipt (a Token-2022 mint of supply 1,
held by the wallet that paid).

Test keys only, on a local validator.
"""
import json
import os

from .env import write_secret
from .procs import run
from .services import services_env
from .solana import (TOKEN, TOKEN_2022, VALIDATOR, Chain, Validator, ata_of, funded, nonce_account, pubkeys,
                     transfers_into)

CLUSTER = "localnet"
# Durable nonce accounts of mint's payer: receipts in flight at once.
NONCE_ACCOUNTS = 4
# Transfers per transaction when making deposits (each its own deposit).
TRANSFERS_PER_TX = 5
# Deposit wallets' token accounts created per transaction.
ATAS_PER_TX = 8
# Eggs per whole USDT, as the EVM side's rate.
RATE = "100"


def available() -> bool:
    return VALIDATOR.exists()


class SolanaSide:
    def __init__(self, p):
        self.p = p
        self.accounts: list[str] = []          # registered deposit token accounts
        self.user_of: dict[str, str] = {}      # token account -> user
        self.sent = 0

    def up(self) -> None:
        self.p.services("up", "solana")
        self.p.env.update(services_env(self.p.env))
        self.v = Validator(self.p.local, url=self.p.env["ZL_SOLANA_RPC_URLS"].split(",")[0])

    def setup(self, users: list[str]) -> None:
        p, v = self.p, self.v
        self.ch = Chain(v, TOKEN)  # a holds the USDT and pays every deposit
        seeds = [os.urandom(32).hex() for _ in users]
        wallets = pubkeys(seeds)
        for first in range(0, len(users), ATAS_PER_TX):
            ixs = []
            for u, s in list(zip(users, seeds))[first:first + ATAS_PER_TX]:
                w = wallets[s]
                ata = ata_of(w, self.ch.usdt, TOKEN)
                ixs.append({"token": "ata_create", "program": TOKEN, "mint": self.ch.usdt, "payer": self.ch.a,
                            "ata": ata, "wallet": w})
                out = run([p.bin / "zl-address", "add-solana", w, u, "--cluster", CLUSTER, "--mint", self.ch.usdt],
                          env=p.env)
                assert out.split()[0] == ata, f"zl-address derived {out!r}, expected {ata}"
                self.accounts.append(ata)
                self.user_of[ata] = u
            self.ch.pay(*ixs)
        (payer_seed,), (payer,) = funded(v, 1)
        self.nonces = [nonce_account(v, payer_seed, payer) for _ in range(NONCE_ACCOUNTS)]
        key = write_secret(p.local / "keys" / "solana-payer.key", payer_seed)
        p.psql("INSERT INTO credit_rates (token, rate, note) VALUES (:'v1', :'v2', 'local pipeline, Solana')",
               self.ch.usdt, RATE)
        p.worker_overrides.update({
            "ZL_SOLANA_CLUSTER": CLUSTER, "ZL_SOLANA_MINT": self.ch.usdt, "ZL_SOLANA_PAYER_KEY_FILE": str(key),
            "ZL_SOLANA_NONCE_ACCOUNTS": ",".join(self.nonces),
            # zl-audit checks every Solana receipt on chain too.
            "ZL_AUDIT_SOLANA_RPC_URLS": p.env["ZL_SOLANA_RPC_URLS"]})
        # The EVM detect stays on its chain; Solana's has a copy of its own.
        p.name_overrides["detect-"] = {"ZL_SOLANA_CLUSTER": ""}
        p.name_overrides["sol-detect-"] = {"ZL_SOLANA_COMMITMENT": "confirmed"}
        p.log(f"Solana: USDT mint {self.ch.usdt}, {len(self.accounts)} deposit accounts registered, "
              f"{NONCE_ACCOUNTS} nonce accounts for mint's payer {payer}")

    def start_detect(self) -> None:
        self.p.start("sol-detect-0", "detect")

    def make_deposits(self, n: int) -> int:
        """n USDT transfers (1..50 USDT) into the deposit accounts, in
        transactions of TRANSFERS_PER_TX; returns how many were confirmed."""
        done = 0
        for first in range(0, n, TRANSFERS_PER_TX):
            ixs = [self.ch.tc_to(self.accounts[j % len(self.accounts)], (1 + j % 50) * 10**6)
                   for j in range(first, min(n, first + TRANSFERS_PER_TX))]
            self.ch.pay(*ixs)
            done += len(ixs)
        self.sent += done
        self.p.sent += done
        return done

    # ------------------------------------------------------------ checks
    def rate(self) -> str:
        return RATE

    def on_chain(self) -> int:
        """USDT transfers into the registered accounts that the chain holds,
        counted from each account's transactions (not from what was sent)."""
        return len(self.transfers())

    def transfers(self) -> list[tuple[str, int]]:
        """(account, amount in base units) of each of those transfers."""
        v, out = self.v, []
        for acct in self.accounts:
            sigs = v.rpc("getSignaturesForAddress", acct, {"limit": 1000, "commitment": "confirmed"})
            for s in sigs:
                tx = v.rpc("getTransaction", s["signature"], {"encoding": "jsonParsed", "commitment": "confirmed",
                                                              "maxSupportedTransactionVersion": 0})
                out += transfers_into(tx, self.ch.usdt, (acct,))
        return out

    def receipts(self) -> dict:
        """Each credited Solana deposit's receipt on chain: a Token-2022 mint
        of supply 1 whose minting right is given up, held (1) by the wallet
        that paid. Returns {"checked": n, "bad": [reasons]}."""
        rows = self.p.psql("SELECT deposit_id, nft_contract, from_addr FROM deposits"
                           " WHERE chain_id IS NULL AND state = 'credited'")
        bad = []
        for did, mint, owner in rows:
            acct = self.v.rpc("getAccountInfo", mint, {"encoding": "jsonParsed", "commitment": "finalized"})["value"]
            info = (acct or {}).get("data", {}).get("parsed", {}).get("info", {}) if acct else {}
            held = self.v.rpc("getTokenAccountsByOwner", owner, {"mint": mint}, {"encoding": "jsonParsed"})["value"]
            amounts = [h["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"] for h in held]
            if not acct or acct["owner"] != TOKEN_2022 or info.get("supply") != "1" or info.get("mintAuthority") \
                    or amounts != ["1"]:
                bad.append(f"{did}: receipt {mint}: {json.dumps({'supply': info.get('supply'), 'held': amounts})}")
        return {"checked": len(rows), "bad": bad}

