/* revert.h: revert data (the bytes a contract call fails with, as a
 * JSON-RPC error's `data` gives them) in words an operator reads:
 *   custom errors of the contracts' ABIs with their arguments
 *     AccessControlUnauthorizedAccount(0xf39f...2266, MINTER_ROLE)
 *   Error(string)     Error("Ownable: caller is not the owner")
 *   Panic(uint256)    Panic(0x11: arithmetic overflow or underflow)
 * Known role hashes (the ABIs' <NAME>_ROLE constants: keccak256 of the
 * name, DEFAULT_ADMIN_ROLE zero) are named; other bytes32 values stay hex.
 * What it cannot read it says, with the hex: a selector in no ABI, an
 * argument that does not decode.
 *
 * The errors and roles come from revert_abi.c, generated from
 * deploy/contracts/artifacts/ (every .json) by tools/gen-revert-abi.py.
 *
 * Revert data comes from a node, so it is external input: any text is
 * accepted (fuzzed: tests/fuzz/fuzz_revert.c). Pure; any thread.
 */
#ifndef ZL_REVERT_H
#define ZL_REVERT_H

#include <stdbool.h>
#include <stddef.h>

/* Longest revert data read, in bytes: an Error(string) of a few KiB. Past
 * it the text says how long the data was, not what it says. */
#define ZL_REVERT_DATA_MAX_BYTES 4096

/* The contracts' custom errors as canonical signatures
 * ("AccessControlUnauthorizedAccount(address,bytes32)"), and the role
 * constants' names ("MINTER_ROLE"): revert_abi.c, generated. */
extern const char *const zl_revert_abi_errors[];
extern const size_t zl_revert_abi_errors_count;
extern const char *const zl_revert_abi_roles[];
extern const size_t zl_revert_abi_roles_count;

/* Writes what data_hex (hex, "0x" optional; NULL or "" for none) says into
 * out as NUL-terminated text, cut to out_size (out_size >= 1). Returns true
 * when it was decoded (a known error and all of its arguments), false when
 * out holds a description with the hex instead ("no revert data", "custom
 * error 0x12345678 (in none of the contracts' ABIs): 0x...", ...). */
bool zl_revert_describe(const char *data_hex, char *out, size_t out_size);

/* The meaning of a Solidity panic code (0x11: "arithmetic overflow or
 * underflow"), or NULL for a code the compiler does not use. */
const char *zl_revert_panic_meaning(unsigned long long code);

#endif /* ZL_REVERT_H */
