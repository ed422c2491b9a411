"""TSA definitions: the shipped files, each ConfigError cause, env overrides, secrets."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.errors import ConfigError
from service.settings import load_settings
from service.timestamping.tsa_config import (
    BUILTIN_ROOT_FILE,
    default_config_paths,
    enabled_tsas,
    load_trust,
    load_tsa_configs,
    load_tsa_configs_for,
)

CERTS = Path(__file__).resolve().parents[2] / "config" / "tsa" / "certs"
PRESETS = {"freetsa", "digicert", "sectigo", "globalsign", "entrust", "sslcom", "apple"}


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    (tmp_path / "certs").mkdir()
    shutil.copy(CERTS / "freetsa-root.pem", tmp_path / "certs" / "root.pem")
    return tmp_path


def write(directory: Path, text: str, name: str = "tsa.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


GOOD = """
[[tsa]]
name = "one"
url = "https://tsa.example/tsr"
roots = "certs/root.pem"
"""


def load(*paths: Path, **env: str) -> list:
    return load_tsa_configs(list(paths), env=env, data_dir=paths[0].parent / "data")


def test_shipped_config_enables_only_the_builtin_tsa(tmp_path: Path) -> None:
    tsas = load_tsa_configs(default_config_paths(), env={}, data_dir=tmp_path)
    assert [t.name for t in enabled_tsas(tsas)] == ["builtin"]
    assert {t.name for t in tsas} == {"builtin"} | PRESETS
    builtin = tsas[0]
    assert builtin.url == "http://127.0.0.1:8319/"
    assert builtin.roots == (tmp_path.resolve() / BUILTIN_ROOT_FILE,)
    assert builtin.hash_alg == "sha256" and builtin.timeout == (2.0, 10.0)


def test_every_preset_root_is_a_self_signed_ca_with_its_stated_fingerprint(tmp_path: Path) -> None:
    tsas = [
        t
        for t in load_tsa_configs(default_config_paths(), env={}, data_dir=tmp_path)
        if t.name in PRESETS
    ]
    assert len(tsas) == len(PRESETS)
    for tsa in tsas:
        roots, untrusted = load_trust(tsa)
        assert roots and not untrusted
        assert tsa.url.startswith(("http://", "https://"))
        for path, cert in zip(tsa.roots, roots, strict=True):
            # self-signed and its signature checks (openssl: some of these roots use SHA-1)
            proc = subprocess.run(
                ["openssl", "verify", "-check_ss_sig", "-CAfile", path, path], capture_output=True
            )
            assert proc.returncode == 0, proc.stderr
            assert cert.subject == cert.issuer
            assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            stated = re.search(r"^# SHA-256: ([0-9A-F:]+)$", path.read_text(), re.M)
            assert stated, path
            assert cert.fingerprint(hashes.SHA256()).hex(":").upper() == stated.group(1)
    freetsa = next(t for t in tsas if t.name == "freetsa")
    assert load_trust(freetsa)[0][0].fingerprint(hashes.SHA256()).hex() == (
        "a6379e7cecc05faa3cbf076013d745e327bbbaa38c0b9af22469d4701d18aabc"
    )


def test_minimal_definition_and_defaults(confdir: Path) -> None:
    (tsa,) = load(write(confdir, GOOD))
    assert tsa.enabled and tsa.hash_alg == "sha256" and tsa.digest_size == 32
    assert tsa.roots == ((confdir / "certs" / "root.pem").resolve(),)
    assert tsa.policy is None and tsa.auth is None and tsa.timeout == (5.0, 30.0)


def test_full_definition(confdir: Path) -> None:
    shutil.copy(CERTS / "usertrust-rsa-ca.pem", confdir / "data.pem")
    path = write(
        confdir,
        """
[[tsa]]
name = "full"
url = "http://tsa.example:8080/ts"
enabled = true
description = "all keys"
roots = ["certs/root.pem", "data:../data.pem"]
untrusted = "certs/root.pem"
hash = "sha512"
policy = "1.2.3.4.1"
username = "alice"
password_env = "FULL_TSA_PASSWORD"
connect_timeout_s = 1
read_timeout_s = 2.5
""",
    )
    (tsa,) = load(path, FULL_TSA_PASSWORD="s3cret")
    assert tsa.digest_size == 64 and tsa.policy == "1.2.3.4.1"
    assert tsa.auth == ("alice", "s3cret")
    assert "s3cret" not in repr(tsa)
    assert tsa.timeout == (1.0, 2.5)
    roots, untrusted = load_trust(tsa)
    assert len(roots) == 2 and len(untrusted) == 1


BAD_CASES = {
    "unknown key": ("timeout = 3", "unknown key(s) timeout"),
    "password in file": ('password = "x"', "no password in files"),
    "bad hash": ('hash = "sha1"', "hash must be one of"),
    "bad policy": ('policy = "1.2.x"', "policy must be a dotted OID"),
    "bad url": ('url = "ftp://x/"', "url must be an http(s) URL"),
    "zero timeout": ("read_timeout_s = 0", "read_timeout_s must be in"),
    "huge timeout": ("connect_timeout_s = 3600", "connect_timeout_s must be in"),
    "bool timeout": ("connect_timeout_s = true", "must be a number"),
    "enabled not bool": ('enabled = "yes"', "enabled has the wrong type"),
    "user without env": ('username = "u"', "username and password_env go together"),
    "missing roots file": ('roots = "certs/nope.pem"', "cannot read"),
    "roots not PEM": ('roots = "tsa.toml"', "no usable PEM certificate"),
    "empty roots": ("roots = []", "roots is empty"),
    "builtin untrusted": ('untrusted = "builtin"', "only meaningful in roots"),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_errors_name_the_problem(confdir: Path, case: str) -> None:
    line, message = BAD_CASES[case]
    key = line.split("=")[0].strip()
    body = "\n".join(ln for ln in GOOD.splitlines() if not ln.startswith(key + " "))
    path = write(confdir, body + "\n" + line + "\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load(path)
    assert str(path) in str(info.value) and ("'one'" in str(info.value) or "#1" in str(info.value))


def test_missing_url(confdir: Path) -> None:
    with pytest.raises(ConfigError, match="TSA 'one'.*missing url"):
        load(write(confdir, GOOD.replace('url = "https://tsa.example/tsr"', "")))


def test_missing_roots(confdir: Path) -> None:
    with pytest.raises(ConfigError, match="missing roots"):
        load(write(confdir, GOOD.replace('roots = "certs/root.pem"', "")))


@pytest.mark.parametrize("name", ["", "Has Space", "../x", "UPPER", 3])
def test_bad_names(confdir: Path, name: object) -> None:
    text = GOOD.replace('name = "one"', f"name = {name!r}" if isinstance(name, str) else "name = 3")
    with pytest.raises(ConfigError, match="name must match"):
        load(write(confdir, text.replace("'", '"')))


def test_duplicate_name_across_files(confdir: Path) -> None:
    first, second = write(confdir, GOOD), write(confdir, GOOD, "other.toml")
    with pytest.raises(
        ConfigError, match=r"duplicate TSA name 'one', already defined in .*tsa.toml"
    ):
        load(first, second)


def test_unreadable_or_invalid_files(confdir: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read TSA config"):
        load(confdir / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(confdir, "[[tsa]\n"))
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load(write(confdir, "[tsas]\n"))
    with pytest.raises(ConfigError, match=r"\[\[tsa\]\]"):
        load(write(confdir, "tsa = 3\n"))


def test_password_only_needed_when_enabled(confdir: Path) -> None:
    text = GOOD + 'username = "u"\npassword_env = "ONE_PW"\n'
    with pytest.raises(ConfigError, match="ONE_PW"):
        load(write(confdir, text))
    (tsa,) = load(write(confdir, text + "enabled = false\n"))
    assert not tsa.enabled and tsa.auth is None
    (tsa,) = load(write(confdir, text + "enabled = false\n"), CHRONOSEAL_TSAS="one", ONE_PW="pw")
    assert tsa.enabled and tsa.auth == ("u", "pw")


def test_env_adds_files_and_chooses_tsas(confdir: Path) -> None:
    base = write(confdir, GOOD)
    extra = write(confdir, GOOD.replace('"one"', '"two"') + "enabled = false\n", "extra.toml")
    more = write(confdir, GOOD.replace('"one"', '"three"'), "more.toml")
    tsas = load(base, CHRONOSEAL_TSA_CONFIG=f"{extra}, {more},")
    assert [(t.name, t.enabled) for t in tsas] == [("one", True), ("two", False), ("three", True)]
    tsas = load(base, CHRONOSEAL_TSA_CONFIG=str(extra), CHRONOSEAL_TSAS="two")
    assert [(t.name, t.enabled) for t in tsas] == [("one", False), ("two", True)]
    with pytest.raises(ConfigError, match="CHRONOSEAL_TSAS names unknown TSA.*: nope"):
        load(base, CHRONOSEAL_TSAS="one,nope")


def test_builtin_roots_resolve_to_the_data_dir_and_load_lazily(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[[tsa]]\nname = "builtin"\nurl = "http://127.0.0.1:8319/"\nroots = "builtin"\n'
    )
    (tsa,) = load_tsa_configs([path], env={"CHRONOSEAL_DATA_DIR": str(tmp_path / "d")})
    assert tsa.roots == ((tmp_path / "d").resolve() / BUILTIN_ROOT_FILE,)
    with pytest.raises(ConfigError, match="TSA 'builtin': cannot read"):
        load_trust(tsa)  # not created yet: the built-in TSA makes it on first start
    (tmp_path / "d" / BUILTIN_ROOT_FILE).parent.mkdir(parents=True)
    shutil.copy(CERTS / "apple-root-ca.pem", tmp_path / "d" / BUILTIN_ROOT_FILE)
    assert len(load_trust(tsa)[0]) == 1


def test_too_many_tsas(confdir: Path) -> None:
    text = "".join(GOOD.replace('"one"', f'"t{i}"') for i in range(33))
    with pytest.raises(ConfigError, match="at most 32"):
        load(write(confdir, text))


def test_from_settings_uses_its_files_names_and_data_dir(confdir: Path, tmp_path: Path) -> None:
    extra = write(confdir, GOOD)
    env = {
        "CHRONOSEAL_TSA_CONFIG": str(extra),
        "CHRONOSEAL_TSAS": "one,freetsa",
        "CHRONOSEAL_DATA_DIR": str(tmp_path / "d"),
    }
    settings = load_settings(env=env, config_file=tmp_path / "absent.toml")
    tsas = load_tsa_configs_for(settings, env=env)  # env given twice must not load files twice
    assert [t.name for t in enabled_tsas(tsas)] == ["freetsa", "one"]
    assert tsas[0].roots == ((tmp_path / "d").resolve() / BUILTIN_ROOT_FILE,)
    plain = load_settings(env={}, config_file=tmp_path / "absent.toml")
    assert [t.name for t in enabled_tsas(load_tsa_configs_for(plain, env={}))] == ["builtin"]


def test_builtin_url_follows_where_the_builtin_tsa_runs(tmp_path: Path) -> None:
    """url = "builtin" resolves to the TSA host/port of this deployment, from env or settings."""
    by_env = load_tsa_configs(
        default_config_paths(),
        env={"CHRONOSEAL_TSA_HOST": "0.0.0.0", "CHRONOSEAL_TSA_PORT": "9123"},
        data_dir=tmp_path,
    )
    assert by_env[0].url == "http://127.0.0.1:9123/"
    settings = load_settings(env={}, data_dir=str(tmp_path), tsa_host="::1", tsa_port=9555)
    by_settings = load_tsa_configs_for(settings, {})
    assert by_settings[0].name == "builtin"
    assert by_settings[0].url == "http://[::1]:9555/"
