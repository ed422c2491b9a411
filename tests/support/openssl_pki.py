"""Build throw-away PKIs and RFC 3161 tokens with the `openssl` binary, at test time.

Everything (keys included) lives under the directory the caller passes, normally a pytest
tmp dir, so no private key is ever committed. OpenSSL is the reference implementation the
verifier is compared against, so tokens come from `openssl ts -reply` and verdicts from
`openssl ts -verify`.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"
# Generous: key generation plus signing takes well under a second even on a busy machine.
OPENSSL_TIMEOUT_S = 30

# `openssl genpkey` arguments per key kind accepted by make_openssl_pki. OpenSSL 3.0's
# `ts -reply` signs only with the RSA and EC kinds; for rsa-pss and ed25519 it answers a
# rejection TimeStampResp (still useful as input, and the certificates are usable elsewhere).
KEY_ALGORITHMS: dict[str, list[str]] = {
    "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "rsa-pss": ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
    "ec-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ec-p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "ec-p521": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    "ed25519": ["-algorithm", "ED25519"],
}

DEFAULT_POLICY = "1.3.6.1.4.1.99999.1.1"
OTHER_POLICIES = ("1.3.6.1.4.1.99999.1.2", "1.3.6.1.4.1.99999.1.3")

_CONFIG_TEMPLATE = """\
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{intermediate_extra}

[ v3_tsa ]
basicConstraints = critical, CA:FALSE
keyUsage = {tsa_key_usage}
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{tsa_extra}

[ tsa ]
default_tsa = tsa_default

[ tsa_default ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = {digest}
default_policy = {policy}
other_policies = {other_policies}
digests = sha1, sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = {ess_cert_id_alg}

{extra_sections}
"""

_serials = itertools.count(1000)


def run_openssl(*args: str | Path, stdin: bytes | None = None) -> bytes:
    """Run `openssl args...` and return stdout; raise with stderr on failure."""
    proc = subprocess.run(
        [OPENSSL, *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=OPENSSL_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {proc.stderr.decode()}")
    return proc.stdout


@dataclass
class OpenSSLPKI:
    """A root CA, optional intermediate CA and TSA certificate, plus an `openssl ts` config."""

    dir: Path
    root_pem: Path
    intermediate_pem: Path | None
    tsa_cert_pem: Path
    tsa_key_pem: Path
    chain_pem: Path  # TSA certificate then intermediates, never the root
    config: Path

    def reply(
        self, query_der: bytes, *, include_chain: bool = False, policy: str | None = None
    ) -> bytes:
        """Answer a DER TimeStampReq with `openssl ts -reply`; return the DER TimeStampResp.

        The signer certificate goes into the token when the query sets certReq; include_chain
        adds the intermediates too.
        """
        with tempfile.NamedTemporaryFile(dir=self.dir, suffix=".tsq") as query:
            query.write(query_der)
            query.flush()
            args: list[str | Path] = ["ts", "-reply", "-config", self.config]
            args += ["-queryfile", query.name]
            if include_chain:
                args += ["-chain", self.chain_pem]
            if policy is not None:
                args += ["-tspolicy", policy]
            return run_openssl(*args)


def _genkey(path: Path, key: str) -> None:
    if key not in KEY_ALGORITHMS:
        raise ValueError(f"unknown key kind {key!r}; one of {sorted(KEY_ALGORITHMS)}")
    run_openssl("genpkey", *KEY_ALGORITHMS[key], "-out", path)


def _issue(
    d: Path, name: str, subject: str, ext: str, ca: tuple[Path, Path] | None, key: str, days: int,
    *, digest: str = "sha256", serial: int | None = None,
) -> tuple[Path, Path]:
    """Create a key and a certificate for it, self-signed when ca is None."""
    key_path, cert_path = d / f"{name}.key", d / f"{name}.pem"
    _genkey(key_path, key)
    cfg = d / "openssl.cnf"
    common = ["-days", str(days), "-extfile", cfg, "-extensions", ext, f"-{digest}"]
    if ca is None:
        run_openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            key_path,
            "-subj",
            subject,
            "-config",
            cfg,
            "-extensions",
            ext,
            "-days",
            str(days),
            "-out",
            cert_path,
            "-set_serial",
            str(next(_serials)),
        )
        return cert_path, key_path
    csr = d / f"{name}.csr"
    run_openssl("req", "-new", "-key", key_path, "-subj", subject, "-config", cfg, "-out", csr)
    run_openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca[0],
        "-CAkey",
        ca[1],
        *common,
        "-set_serial",
        str(next(_serials) if serial is None else serial),
        "-out",
        cert_path,
    )
    return cert_path, key_path


def make_openssl_pki(
    directory: Path,
    *,
    key: str = "ec-p256",
    intermediate: bool = False,
    digest: str = "sha256",
    not_after_days: int = 365,
    ess_cert_id_alg: str = "sha256",
    cert_digest: str = "sha256",
    tsa_key_usage: str = "critical, digitalSignature",
    tsa_serial: int | None = None,
    intermediate_extra: str = "",
    tsa_extra: str = "",
    extra_sections: str = "",
) -> OpenSSLPKI:
    """Create root CA (P-256), optional intermediate (P-256) and a TSA leaf with `key`.

    `digest` is the TSA's signer_digest; `ess_cert_id_alg` sha1 makes OpenSSL emit a
    signing-certificate (v1) attribute, anything else signing-certificate-v2. `cert_digest`
    signs the intermediate and TSA certificates; `intermediate_extra` / `tsa_extra` are extra
    extension lines (config syntax) and `extra_sections` config sections they refer to.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    config = d / "openssl.cnf"
    config.write_text(
        _CONFIG_TEMPLATE.format(
            dir=d,
            digest=digest,
            policy=DEFAULT_POLICY,
            other_policies=", ".join(OTHER_POLICIES),
            ess_cert_id_alg=ess_cert_id_alg,
            intermediate_extra=intermediate_extra,
            tsa_key_usage=tsa_key_usage,
            tsa_extra=tsa_extra,
            extra_sections=extra_sections,
        )
    )
    (d / "tsaserial").write_text("01\n")
    root = _issue(d, "root", "/O=Chronoseal Test/CN=Test Root CA", "v3_root", None, "ec-p256", 3650)
    issuer, inter_pem = root, None
    if intermediate:
        issuer = _issue(
            d,
            "intermediate",
            "/O=Chronoseal Test/CN=Test Intermediate CA",
            "v3_intermediate",
            root,
            "ec-p256",
            1825,
            digest=cert_digest,
        )
        inter_pem = issuer[0]
    tsa_cert, tsa_key = _issue(
        d, "tsa", f"/O=Chronoseal Test/CN=Test TSA {key}", "v3_tsa", issuer, key, not_after_days,
        digest=cert_digest, serial=tsa_serial,
    )
    chain = d / "chain.pem"
    chain.write_bytes(tsa_cert.read_bytes() + (inter_pem.read_bytes() if inter_pem else b""))
    return OpenSSLPKI(d, root[0], inter_pem, tsa_cert, tsa_key, chain, config)


def make_query(
    data: bytes | None = None,
    *,
    digest: bytes | None = None,
    hash_alg: str = "sha256",
    nonce: bool = True,
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """Build a DER TimeStampReq with `openssl ts -query` over data or a ready digest."""
    if (data is None) == (digest is None):
        raise ValueError("give exactly one of data or digest")
    args: list[str | Path] = ["ts", "-query", f"-{hash_alg}"]
    if digest is not None:
        args += ["-digest", digest.hex()]
    args += [] if nonce else ["-no_nonce"]
    args += ["-cert"] if cert_req else []
    args += ["-tspolicy", policy] if policy else []
    return run_openssl(*args, stdin=data)


def openssl_ts_verify(
    reply: bytes,
    *,
    digest: bytes | None = None,
    data: bytes | None = None,
    ca_pem: Path,
    untrusted: Path | None = None,
    query: bytes | None = None,
    token: bool = False,
    attime: int | None = None,
    partial_chain: bool = False,
    policy_check: bool = False,
) -> bool:
    """Run `openssl ts -verify`; True iff it prints "Verification: OK".

    `token` says reply is a bare TimeStampToken; `attime` (Unix time) sets the chain check time,
    which OpenSSL otherwise takes as now, not genTime. `partial_chain` and `policy_check` pass
    -partial_chain and -policy_check.
    """
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "in").write_bytes(reply)
        args: list[str | Path] = [
            "ts",
            "-verify",
            *(["-token_in"] if token else []),
            "-in",
            t / "in",
        ]
        args += ["-CAfile", ca_pem]
        if untrusted is not None:
            args += ["-untrusted", untrusted]
        if attime is not None:
            args += ["-attime", str(attime)]
        if partial_chain:
            args += ["-partial_chain"]
        if policy_check:  # OpenSSL evaluates certificate policies only when asked to, and
            # needs the initial policy set RFC 5280 6.1.1 (c) defaults to: any-policy.
            args += ["-policy_check", "-policy", "2.5.29.32.0"]
        if query is not None:
            (t / "q").write_bytes(query)
            args += ["-queryfile", t / "q"]
        elif digest is not None:
            args += ["-digest", digest.hex()]
        elif data is not None:
            (t / "data").write_bytes(data)
            args += ["-data", t / "data"]
        proc = subprocess.run(
            [OPENSSL, *map(str, args)], capture_output=True, timeout=OPENSSL_TIMEOUT_S, check=False
        )
        return proc.returncode == 0 and b"Verification: OK" in proc.stdout


_CA_CONFIG = """\
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = $dir/ca-index.txt
crlnumber = $dir/ca-crlnumber
certificate = {cert}
private_key = {key}
default_md = sha256
default_crl_days = 1
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid
"""


def openssl_ca_crl(pki: OpenSSLPKI, *, revoke: Path | None = None,
                   reason: str = "cessationOfOperation") -> bytes:
    """The DER CRL `openssl ca -gencrl` issues for the TSA certificate's issuer, after
    `openssl ca -revoke` of `revoke` (with `reason`) when given. The CA database is kept in
    pki.dir, so revocations accumulate across calls."""
    ca_cert = pki.intermediate_pem or pki.root_pem
    config = pki.dir / "ca.cnf"
    if not config.exists():
        config.write_text(_CA_CONFIG.format(dir=pki.dir, cert=ca_cert,
                                            key=ca_cert.with_suffix(".key")))
        (pki.dir / "ca-index.txt").write_text("")
        (pki.dir / "ca-crlnumber").write_text("1000\n")
    if revoke is not None:
        run_openssl("ca", "-config", config, "-revoke", revoke, "-crl_reason", reason)
    pem = pki.dir / "crl.pem"
    run_openssl("ca", "-config", config, "-gencrl", "-out", pem)
    return run_openssl("crl", "-in", pem, "-outform", "DER")


def openssl_ocsp_response(pki: OpenSSLPKI) -> bytes:
    """The DER OCSP response `openssl ocsp -index` gives for the TSA certificate, signed by its
    issuer, from the CA database of openssl_ca_crl (revocations included), valid for a day."""
    ca_cert = pki.intermediate_pem or pki.root_pem
    if not (pki.dir / "ca.cnf").exists():
        openssl_ca_crl(pki)
    out = pki.dir / "ocsp.der"
    run_openssl("ocsp", "-index", pki.dir / "ca-index.txt", "-CA", ca_cert, "-rsigner", ca_cert,
                "-rkey", ca_cert.with_suffix(".key"), "-issuer", ca_cert, "-cert",
                pki.tsa_cert_pem, "-no_nonce", "-ndays", "1", "-respout", out)
    return out.read_bytes()
