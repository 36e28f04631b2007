"""Throwaway certificates for the TLS tests, made with openssl (and the
Java stores with openssl and keytool), in a folder of the test's own.

A CA signs server certificates whose subjectAltName names the addresses the
tests connect to (127.0.0.1, localhost), as a production CA would name the
broker's or database's host: librdkafka (ssl.endpoint.identification.algorithm
=https) and libpq (sslmode=verify-full) check that name, not only the chain.
Keys are unencrypted PKCS#8 files, mode 0600 (libpq and our binaries refuse
looser ones). Nothing here is secret: the CA lives for one test module.
"""
from dataclasses import dataclass
from pathlib import Path

from .env import REPO
from .procs import run

# Long enough for any test run, short enough that a leaked key is worthless.
CERT_DAYS = 2
# The names a server certificate carries unless told otherwise.
LOOPBACK_SANS = ("IP:127.0.0.1", "DNS:localhost")
DEPLOY_DOC = REPO / "docs" / "deploy.md"
OPENSSL_TIMEOUT_S = 30
KEYTOOL_TIMEOUT_S = 60


@dataclass
class Cert:
    """A certificate and its key, PEM files."""
    crt: Path
    key: Path


def _new_key(path: Path) -> Path:
    # P-256: as strong as RSA-3072 here, and generated in milliseconds.
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path],
        timeout=OPENSSL_TIMEOUT_S)
    path.chmod(0o600)
    return path


def make_ca(folder: Path, name: str = "ca") -> Cert:
    """A self-signed CA, folder/name.crt and folder/name.key."""
    folder.mkdir(parents=True, exist_ok=True)
    key = _new_key(folder / f"{name}.key")
    crt = folder / f"{name}.crt"
    run(["openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", str(CERT_DAYS),
         "-subj", f"/CN=zeroloss test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], timeout=OPENSSL_TIMEOUT_S)
    return Cert(crt, key)


def issue(ca: Cert, folder: Path, name: str, sans: tuple[str, ...] = LOOPBACK_SANS,
          usage: str = "serverAuth,clientAuth") -> Cert:
    """A leaf certificate signed by ca, folder/name.crt and .key, naming
    sans (openssl's subjectAltName syntax). Its usage allows both ends by
    default: a broker presents its certificate to itself on the inter-broker
    listener, where the peer checks clientAuth."""
    key = _new_key(folder / f"{name}.key")
    csr, crt, ext = folder / f"{name}.csr", folder / f"{name}.crt", folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={','.join(sans)}\nbasicConstraints=CA:FALSE\n"
                   f"keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage={usage}\n")
    cn = sans[0].split(":", 1)[1]
    run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={cn}"], timeout=OPENSSL_TIMEOUT_S)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca.crt, "-CAkey", ca.key, "-CAcreateserial",
         "-days", str(CERT_DAYS), "-extfile", ext, "-out", crt], timeout=OPENSSL_TIMEOUT_S)
    return Cert(crt, key)


def java_keystore(cert: Cert, ca: Cert, path: Path, password: str) -> Path:
    """A PKCS12 keystore (what a Java broker's ssl.keystore.location names)
    holding cert's key and its chain up to ca."""
    run(["openssl", "pkcs12", "-export", "-in", cert.crt, "-inkey", cert.key, "-certfile", ca.crt,
         "-name", "server", "-out", path, "-passout", f"pass:{password}"], timeout=OPENSSL_TIMEOUT_S)
    path.chmod(0o600)
    return path


def java_truststore(ca: Cert, path: Path, password: str) -> Path:
    """A PKCS12 truststore holding ca as a trusted entry. keytool, because
    Java trusts only entries it marked itself (openssl 3.0 cannot)."""
    run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", ca.crt, "-keystore", path,
         "-storetype", "PKCS12", "-storepass", password], timeout=KEYTOOL_TIMEOUT_S)
    return path


def deploy_doc_blocks(lang: str = "") -> list[str]:
    """The fenced blocks of docs/deploy.md opened with ```lang, so a test
    can check the settings the operator is shown are the ones it proved."""
    blocks, current, opened = [], None, None
    for line in DEPLOY_DOC.read_text().splitlines():
        fence = line.strip().startswith("```")
        if current is None and fence:
            current, opened = [], line.strip()[3:]
        elif current is not None and fence:
            if opened == lang:
                blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks
