"""Name constraints and certificate policy constraints of a path (RFC 5280 4.2.1.10, 6.1).

Own code rather than cryptography's `x509.verification` (50.0.2), measured on our test PKIs:
its default WebPKI extension policies refuse every TSA leaf (critical EKU timeStamping); with
`ExtensionPolicy.permit_all()` (the CA policy must still require basicConstraints) and
`build_client_verifier()` it validated P-256, P-521, RSA, RSA-PSS and Ed25519-key leaves, but
refused SHA-1-signed certificates ("Forbidden signature algorithm") and negative serial
numbers, both found in real TSA chains. Using it only where it agrees would mean two path
builders with different rules and messages, so the one own path checks constraints here.
Like OpenSSL, the constraints of every CA in the path count, the anchor's too; self-issued
intermediates are not checked against them (RFC 5280 6.1.3 b).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from service.errors import MalformedInputError
from service.timestamping import tlv
from service.timestamping.certificates import extension
from service.timestamping.names import name_key

ANY_POLICY = "2.5.29.32.0"
# Extensions cryptography leaves unparsed that this module processes (so they may be critical).
HANDLED_RAW_EXTENSIONS = frozenset({ExtensionOID.POLICY_MAPPINGS})


def check_name_constraints(path: Sequence[x509.Certificate]) -> list[str]:
    """Reasons a certificate below a CA breaks that CA's NameConstraints; [] if none does."""
    problems = []
    for top in range(1, len(path)):
        nc = extension(path[top], x509.NameConstraints)
        if nc is None:
            continue
        for depth in range(top):
            cert = path[depth]
            if depth > 0 and _self_issued(cert):
                continue
            for name in _names(cert):
                problem = _breaks(nc, name)
                if problem:
                    who = ("TSA certificate" if depth == 0
                           else f"CA certificate {cert.subject.rfc4514_string()}")
                    problems.append(f"{who} name {_show(name)} {problem} by the name "
                                    f"constraints of {path[top].subject.rfc4514_string()}")
    return problems


def check_policies(path: Sequence[x509.Certificate]) -> list[str]:
    """RFC 5280 6.1 policy processing with any-policy as the initial set: requireExplicitPolicy,
    inhibitPolicyMapping and inhibitAnyPolicy; [] when the path satisfies them.

    The valid policy tree is kept as the set of policies the next certificate may assert
    (expected policies after mapping), which is all that any-policy as input needs.
    """
    certs = list(reversed(path))[1:]  # the anchor is input to the algorithm, not part of it
    n = len(certs)
    explicit = inhibit_any = mapping = n + 1
    valid: set[str] | None = {ANY_POLICY}
    for k, cert in enumerate(certs, 1):
        last, self_issued = k == n, _self_issued(cert)
        valid = _next_valid(valid, cert, inhibit_any > 0 or (self_issued and not last))
        if explicit == 0 and valid is None:
            return [f"{cert.subject.rfc4514_string()}: a CA requires an explicit certificate "
                    "policy, which the chain does not have"]
        if last:
            break
        valid = _mapped(valid, cert, mapping > 0)
        if not self_issued:
            explicit, mapping, inhibit_any = (max(c - 1, 0) for c in (explicit, mapping,
                                                                     inhibit_any))
        pc = extension(cert, x509.PolicyConstraints)
        if pc is not None and pc.require_explicit_policy is not None:
            explicit = min(explicit, pc.require_explicit_policy)
        if pc is not None and pc.inhibit_policy_mapping is not None:
            mapping = min(mapping, pc.inhibit_policy_mapping)
        ia = extension(cert, x509.InhibitAnyPolicy)
        if ia is not None:
            inhibit_any = min(inhibit_any, ia.skip_certs)
    explicit = max(explicit - 1, 0)
    leaf_pc = extension(path[0], x509.PolicyConstraints) if n else None
    if leaf_pc is not None and leaf_pc.require_explicit_policy == 0:
        explicit = 0
    if explicit == 0 and valid is None:
        return ["a CA requires an explicit certificate policy, which the chain does not have"]
    return []


def _next_valid(valid: set[str] | None, cert: x509.Certificate, any_ok: bool) -> set[str] | None:
    """6.1.3 (d, e): the policies still valid after `cert`; None is the NULL tree."""
    policies = extension(cert, x509.CertificatePolicies)
    if policies is None or valid is None:
        return None
    asserted = {p.policy_identifier.dotted_string for p in policies}
    named = asserted - {ANY_POLICY}
    out = set(named) if ANY_POLICY in valid else valid & named
    if ANY_POLICY in asserted and any_ok:
        out |= valid
    return out or None


def _mapped(valid: set[str] | None, cert: x509.Certificate, allowed: bool) -> set[str] | None:
    """6.1.4 (a, b): issuerDomain policies become their subjectDomain ones, or go if inhibited."""
    mappings = policy_mappings(cert)
    if not mappings or valid is None:
        return valid
    out = set(valid)
    for issuer, subject in mappings:
        if issuer in valid or ANY_POLICY in valid:
            out.discard(issuer)
            if allowed:
                out.add(subject)
    return out or None


def policy_mappings(cert: x509.Certificate) -> list[tuple[str, str]]:
    """(issuerDomainPolicy, subjectDomainPolicy) pairs; cryptography leaves the extension raw."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.POLICY_MAPPINGS).value
    except x509.ExtensionNotFound:
        return []
    if not isinstance(ext, x509.UnrecognizedExtension):
        raise ValueError("policyMappings extension of an unexpected type")
    der = ext.value
    try:
        pairs = [tlv.children(der, p) for p in tlv.children(der, tlv.read(der))]
        return [(tlv.oid(der, p[0]), tlv.oid(der, p[1])) for p in pairs if len(p) == 2]
    except MalformedInputError as exc:
        raise ValueError(f"policyMappings does not parse: {exc}") from exc


def _names(cert: x509.Certificate) -> list[x509.GeneralName]:
    """Subject DN (when not empty), its e-mail attributes, and the subjectAltName entries."""
    names: list[x509.GeneralName] = []
    if len(cert.subject):
        names.append(x509.DirectoryName(cert.subject))
    names += [x509.RFC822Name(str(a.value))
              for a in cert.subject.get_attributes_for_oid(x509.NameOID.EMAIL_ADDRESS)]
    san = extension(cert, x509.SubjectAlternativeName)
    return names + (list(san) if san is not None else [])


def _breaks(nc: x509.NameConstraints, name: x509.GeneralName) -> str | None:
    """"is excluded" / "is not permitted" / "cannot be checked", or None when allowed."""
    kind = type(name)
    permitted = [s for s in nc.permitted_subtrees or () if type(s) is kind]
    excluded = [s for s in nc.excluded_subtrees or () if type(s) is kind]
    if not permitted and not excluded:
        return None
    try:
        if any(_within(name, s) for s in excluded):
            return "is excluded"
        if permitted and not any(_within(name, s) for s in permitted):
            return "is not permitted"
    except (ValueError, MalformedInputError):
        return "cannot be checked"
    return None


def _within(name: x509.GeneralName, base: x509.GeneralName) -> bool:
    """RFC 5280 4.2.1.10 matching of one name against one subtree base of the same type."""
    if isinstance(name, x509.DirectoryName) and isinstance(base, x509.DirectoryName):
        key, prefix = name_key(name.value.public_bytes()), name_key(base.value.public_bytes())
        return key[: len(prefix)] == prefix
    if isinstance(name, x509.DNSName) and isinstance(base, x509.DNSName):
        return _host_within(name.value, base.value)
    if isinstance(name, x509.RFC822Name) and isinstance(base, x509.RFC822Name):
        return _mail_within(name.value, base.value)
    if isinstance(name, x509.UniformResourceIdentifier) and isinstance(
            base, x509.UniformResourceIdentifier):
        host = urlsplit(name.value).hostname
        if not host:
            raise ValueError("URI without a host")
        return _host_within(host, base.value)
    if isinstance(name, x509.IPAddress) and isinstance(base, x509.IPAddress):
        network = base.value
        if not isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            raise ValueError("IP constraint is not a network")
        address = name.value
        return isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address) and (
            address.version == network.version and address in network)
    raise ValueError(f"{type(name).__name__} constraints are not supported")


def _host_within(host: str, base: str) -> bool:
    host, base = host.lower().rstrip("."), base.lower().rstrip(".")
    if base.startswith("."):
        return host.endswith(base)
    return not base or host == base or host.endswith("." + base)


def _mail_within(mail: str, base: str) -> bool:
    local, _, host = mail.rpartition("@")
    if "@" in base:
        base_local, _, base_host = base.rpartition("@")
        return local == base_local and host.lower() == base_host.lower()
    return _host_within(host, base) if base.startswith(".") else host.lower() == base.lower()


def _show(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)


def _self_issued(cert: x509.Certificate) -> bool:
    try:
        return name_key(cert.subject.public_bytes()) == name_key(cert.issuer.public_bytes())
    except MalformedInputError:
        return cert.subject.public_bytes() == cert.issuer.public_bytes()
