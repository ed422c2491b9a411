"""RFC 4998 Evidence Records: archive timestamps that keep a token's evidence alive.

A TSA certificate expires, and a hash algorithm weakens; a token is only as good as both. An
archive timestamp (ATS) is a newer token over a hash tree whose leaves cover older evidence,
obtained while that evidence still verifies; a chain of them carries it forward indefinitely.

Hashing (RFC 4998 4.2-4.3, SHA-256 throughout): a data object group is one original token
(the bundle's tokens/<tsa>.tsr bytes) with each certificate of its chain (DER) and each
revocation blob; its first list holds the hash of every member. A list's value is
SHA-256 of its hashes sorted in binary ascending order and concatenated; a node's list is its
children's values; an odd node is carried up unchanged. A reduced hash tree is the list path
from a leaf to the root; the ATS's token imprints the root. Renewal (RFC 4998 5.2, timestamp
renewal) adds an ATS whose leaf list is [SHA-256(the previous ATS's timeStamp DER)].
Hash-tree renewal (a new hash algorithm) is not built: every ATS here uses SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc4998, rfc5280, rfc5652

from service.errors import MalformedInputError
from service.timestamping import tlv

SHA256_OID = "2.16.840.1.101.3.4.2.1"
MAX_RECORD_BYTES = 512 * 1024  # ~4 KiB per ATS: room for a century of yearly renewals
MAX_CHAIN_LENGTH = 128  # archive timestamps in one record: yearly renewals for a century
MAX_TREE_DEPTH = 64  # lists in a reduced hash tree: a tree of 2^64 leaves
MAX_LIST_LENGTH = 256  # hashes in one list: a token, its chain and its revocation data
_DIGEST = 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def list_value(hashes: Sequence[bytes]) -> bytes:
    """SHA-256 over the list's hashes sorted in binary ascending order (RFC 4998 4.3 step 3)."""
    return sha256(b"".join(sorted(hashes)))


def data_object_hashes(token: bytes, chain: Sequence[bytes],
                       revocation: Sequence[bytes]) -> list[bytes]:
    """The first list for one original token: its hash first, then each certificate of its
    chain (DER) and each revocation blob (DER CRL or OCSP response) stored with it. The list's
    value sorts the hashes, so only the set matters; callers pass revocation.ordered_blobs."""
    return [sha256(token), *(sha256(c) for c in chain), *(sha256(r) for r in revocation)]


@dataclass(frozen=True)
class HashTree:
    """A tree over leaf lists; `reduced(i)` is leaf i's path of lists, `root` the imprint."""

    root: bytes
    paths: tuple[tuple[tuple[bytes, ...], ...], ...]

    def reduced(self, index: int) -> tuple[tuple[bytes, ...], ...]:
        return self.paths[index]


def build_tree(leaves: Sequence[Sequence[bytes]]) -> HashTree:
    """The hash tree over leaf lists (one per record renewed) and every leaf's reduced tree."""
    if not leaves:
        raise MalformedInputError("an archive timestamp covers at least one record")
    paths: list[list[tuple[bytes, ...]]] = [[tuple(leaf)] for leaf in leaves]
    # nodes: (value, indexes of the leaves below it)
    nodes = [(list_value(leaf), [i]) for i, leaf in enumerate(leaves)]
    while len(nodes) > 1:
        upper = []
        for k in range(0, len(nodes) - 1, 2):
            (left, lows), (right, highs) = nodes[k], nodes[k + 1]
            for i in lows:
                paths[i].append((right,))
            for i in highs:
                paths[i].append((left,))
            upper.append((list_value([left, right]), lows + highs))
        if len(nodes) % 2:
            upper.append(nodes[-1])  # carried up: no list for it at this level
        nodes = upper
    return HashTree(nodes[0][0], tuple(tuple(p) for p in paths))


def reduce(h: bytes, lists: Sequence[Sequence[bytes]]) -> bytes | None:
    """The root a reduced hash tree leads to from data hash `h`, or None if `h` is not in it.

    RFC 4998 4.3: h must be in the first list; each list's value "becomes a member" of the
    next one: lists above the first hold the siblings only, and the value is added to them.
    """
    if not lists:
        return h  # a single data object: the timestamp imprints its hash
    if len(lists) > MAX_TREE_DEPTH or h not in lists[0]:
        return None
    value = list_value(lists[0])
    for hashes in lists[1:]:
        value = list_value([*hashes, value])
    return value


@dataclass(frozen=True)
class ArchiveTimeStamp:
    """One ATS as read: its reduced hash tree and its timeStamp (a TimeStampToken, DER)."""

    lists: tuple[tuple[bytes, ...], ...]
    token: bytes


def token_of(reply: bytes) -> bytes:
    """The TimeStampToken (ContentInfo) inside a TimeStampResp: what an ATS holds."""
    outer = tlv.read(reply, 0)
    parts = tlv.children(reply, outer)
    if len(parts) < 2:
        raise MalformedInputError("the reply holds no timeStampToken")
    return reply[parts[1].start:parts[1].end]


def encode_record(chain: Sequence[ArchiveTimeStamp]) -> bytes:
    """An EvidenceRecord (DER) with one ArchiveTimeStampChain, SHA-256 throughout."""
    if not 0 < len(chain) <= MAX_CHAIN_LENGTH:
        raise MalformedInputError(f"an evidence record holds 1..{MAX_CHAIN_LENGTH} timestamps")
    record = rfc4998.EvidenceRecord()
    record["version"] = 1
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = rfc5280.univ.ObjectIdentifier(SHA256_OID)
    record["digestAlgorithms"].append(algorithm)
    chain_asn1 = rfc4998.ArchiveTimeStampChain()
    for ats in chain:
        item = rfc4998.ArchiveTimeStamp()
        item["digestAlgorithm"]["algorithm"] = rfc5280.univ.ObjectIdentifier(SHA256_OID)
        if ats.lists:
            tree = item["reducedHashtree"]
            for hashes in ats.lists:
                partial = rfc4998.PartialHashtree()
                for h in hashes:
                    partial.append(rfc4998.univ.OctetString(h))
                tree.append(partial)
        content, _ = decoder.decode(ats.token, asn1Spec=rfc5652.ContentInfo())
        item["timeStamp"] = content
        chain_asn1.append(item)
    record["archiveTimeStampSequence"].append(chain_asn1)
    return bytes(encoder.encode(record))


def decode_record(der: bytes) -> list[ArchiveTimeStamp]:
    """The archive timestamps of an EvidenceRecord in order; MalformedInputError if it is not
    one this module reads (one chain, SHA-256, bounded sizes)."""
    if len(der) > MAX_RECORD_BYTES:
        raise MalformedInputError(f"an evidence record is at most {MAX_RECORD_BYTES} bytes")
    try:
        record, rest = decoder.decode(der, asn1Spec=rfc4998.EvidenceRecord())
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise MalformedInputError(f"not a DER EvidenceRecord: {exc}") from exc
    if rest or int(record["version"]) != 1:
        raise MalformedInputError("not a version 1 EvidenceRecord")
    sequence = record["archiveTimeStampSequence"]
    if len(sequence) != 1 or not 0 < len(sequence[0]) <= MAX_CHAIN_LENGTH:
        raise MalformedInputError("the record must hold one chain of archive timestamps")
    out = []
    for item in sequence[0]:
        alg = item["digestAlgorithm"]
        if alg.isValue and str(alg["algorithm"]) != SHA256_OID:
            raise MalformedInputError("only SHA-256 archive timestamps are read")
        lists: list[tuple[bytes, ...]] = []
        if item["reducedHashtree"].isValue:
            if len(item["reducedHashtree"]) > MAX_TREE_DEPTH:
                raise MalformedInputError("the reduced hash tree is deeper than any real one")
            for partial in item["reducedHashtree"]:
                hashes = tuple(bytes(h) for h in partial)
                if not 0 < len(hashes) <= MAX_LIST_LENGTH or any(len(h) != _DIGEST
                                                                 for h in hashes):
                    raise MalformedInputError("a partial hash tree holds 1..256 SHA-256 hashes")
                lists.append(hashes)
        out.append(ArchiveTimeStamp(tuple(lists), bytes(encoder.encode(item["timeStamp"]))))
    return out
