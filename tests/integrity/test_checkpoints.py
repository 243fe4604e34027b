"""Keys, signed checkpoints, the emitter a writer will hold, and witnesses: each piece alone, with an
injected clock (no sleeping, no wall clock)."""

from __future__ import annotations

import base64
import stat
import sys
from pathlib import Path

import pytest

from llmaudit import ConfigurationError

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import GENESIS
from llmaudit.integrity.checkpoints import Checkpoint, CheckpointEmitter, checkpoint_problem
from llmaudit.integrity.keys import (
    PASSPHRASE_ENV,
    SIGNING_KEY_ENV,
    SigningKey,
    generate_keypair,
    load_public_key,
    load_signing_key,
    public_keys,
    signing_key_from_env,
)
from llmaudit.integrity.merkle import MerkleTree
from llmaudit.integrity.witness import CommandWitness, FileWitness, open_witness, read_checkpoints


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _hashes(n: int, start: int = 0) -> list[str]:
    return [f"v2:{i:064x}" for i in range(start, start + n)]


# -- keys ----------------------------------------------------------------------------------------


def test_generated_keys_are_written_private_0600_and_load_back(tmp_path: Path) -> None:
    files = generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(files.private.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.public.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    key = load_signing_key(files.private)
    assert key.key_id == files.key_id == load_public_key(files.public).key_id
    assert key.key_id not in repr(key) and "PRIVATE" not in repr(key)
    with pytest.raises(ConfigurationError, match="not overwriting"):
        generate_keypair(tmp_path / "keys")


def test_a_key_encrypted_with_a_passphrase_needs_it(tmp_path: Path) -> None:
    files = generate_keypair(tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in files.private.read_bytes()
    assert load_signing_key(files.private, b"correct horse").key_id == files.key_id
    with pytest.raises(ConfigurationError):
        load_signing_key(files.private)
    with pytest.raises(ConfigurationError):
        load_signing_key(files.private, b"wrong")


def test_the_signing_key_comes_from_a_path_or_its_own_text_in_the_environment(tmp_path: Path) -> None:
    files = generate_keypair(tmp_path, passphrase=b"pw")
    text = files.private.read_text()
    assert signing_key_from_env({}) is None
    by_text = signing_key_from_env({SIGNING_KEY_ENV: text, PASSPHRASE_ENV: "pw"})
    by_path = signing_key_from_env({SIGNING_KEY_ENV: str(files.private), PASSPHRASE_ENV: "pw"})
    assert by_text is not None and by_path is not None
    assert by_text.key_id == by_path.key_id == files.key_id
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_signing_key(tmp_path / "absent.pem")
    with pytest.raises(ConfigurationError, match="public key"):
        load_public_key(files.private)  # a private key is not a public one


def test_a_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError, match="Ed25519"):
        load_signing_key(pem)
    public = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError, match="Ed25519"):
        load_public_key(public)


def test_core_llmaudit_imports_without_cryptography() -> None:
    """Recording, the chain, checkpoints' data and the CLI need no cryptography; keys say what to install."""
    import subprocess

    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import llmaudit, llmaudit.cli, llmaudit.integrity.checkpoints, llmaudit.integrity.signed\n"
        "import llmaudit.integrity.proofs, llmaudit.integrity.witness, llmaudit.cli._integrity\n"
        "try:\n    import llmaudit.integrity.keys\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "llmaudit-sdk[signing]" in out


# -- checkpoints ---------------------------------------------------------------------------------


def test_the_emitter_checkpoints_every_n_records_and_at_close() -> None:
    key, clock, published = SigningKey.generate(), Clock(), []
    emitter = CheckpointEmitter(
        "w1", key, chain_keyed=False, every_records=4, every_s=60, clock=clock, publish=published.append
    )
    made = emitter.add_many(_hashes(10))
    assert [c.tree_size for c in made] == [4, 8]
    final = emitter.close()
    assert final is not None and final.final and final.tree_size == 10
    assert emitter.close() is None  # idempotent
    assert published == [*made, final]
    assert [c.n for c in published] == [1, 2, 3]
    assert published[0].prev == GENESIS
    assert [c.prev for c in published[1:]] == [c.digest() for c in published[:-1]]
    keys = {key.key_id: key.public}
    assert all(checkpoint_problem(c, keys) is None for c in published)
    tree = MerkleTree()
    for h in _hashes(10):
        tree.add_chain_hash(h)
    assert final.root == tree.root() and final.chain_head == _hashes(10)[-1]


def test_the_emitter_checkpoints_when_the_oldest_uncovered_record_is_t_seconds_old() -> None:
    key, clock = SigningKey.generate(), Clock()
    emitter = CheckpointEmitter("w1", key, chain_keyed=True, every_records=1000, every_s=60, clock=clock)
    assert emitter.tick() is None  # nothing to cover
    assert emitter.add(_hashes(1)[0]) is None
    clock.now += 59
    assert emitter.add_many(_hashes(1, 1)) == [] and emitter.tick() is None
    clock.now += 1
    made = emitter.tick()
    assert made is not None and made.tree_size == 2 and made.chain_keyed
    clock.now += 600
    assert emitter.tick() is None  # nothing new since
    assert emitter.add(_hashes(1, 2)[0]) is None  # the clock starts again with this record
    clock.now += 60
    (late,) = emitter.add_many(_hashes(1, 3))  # a batch ends with a look at the clock
    assert late.tree_size == 4


def test_a_writer_that_sealed_nothing_makes_no_final_checkpoint() -> None:
    emitter = CheckpointEmitter("w", SigningKey.generate(), chain_keyed=False, clock=Clock())
    assert emitter.close() is None


def test_a_resumed_emitter_goes_on_with_the_same_tree_and_links() -> None:
    key, clock = SigningKey.generate(), Clock()
    first = CheckpointEmitter("w", key, chain_keyed=False, every_records=3, clock=clock)
    made = first.add_many(_hashes(5))
    resumed = CheckpointEmitter(
        "w",
        key,
        chain_keyed=False,
        every_records=3,
        clock=clock,
        tree=first.tree,
        last=first.last,
        head=first.head,
    )
    more = resumed.add_many(_hashes(4, 5))
    assert [c.tree_size for c in [*made, *more]] == [3, 6, 9]
    assert more[0].prev == made[0].digest() and more[0].n == 2


def test_rotation_signs_from_the_next_checkpoint_on_and_old_ones_still_verify() -> None:
    old, new, clock = SigningKey.generate(), SigningKey.generate(), Clock()
    emitter = CheckpointEmitter("w", old, chain_keyed=False, every_records=3, clock=clock)
    made = emitter.add_many(_hashes(4))
    bridge = emitter.rotate(new)  # the record the old key had not covered yet
    assert bridge is not None and bridge.key_id == old.key_id and bridge.tree_size == 4
    made += [bridge, *emitter.add_many(_hashes(3, 4))]
    assert [c.key_id for c in made] == [old.key_id, old.key_id, new.key_id]
    both = public_keys([old.public.pem(), new.public])
    assert all(checkpoint_problem(c, both) is None for c in made)
    only_new = {new.key_id: new.public}
    assert "unknown key" in str(checkpoint_problem(made[0], only_new))


def test_checkpoint_json_round_trips_and_refuses_what_is_not_one() -> None:
    key = SigningKey.generate()
    emitter = CheckpointEmitter("w", key, chain_keyed=False, every_records=2, clock=Clock())
    (made,) = emitter.add_many(_hashes(2))
    assert Checkpoint.from_json(made.to_json()) == made
    for broken in (
        {**made.to_json(), "tree_size": "2"},
        {**made.to_json(), "final": 1},
        {**made.to_json(), "root_hash": "zz"},
        {**made.to_json(), "format": "other"},
        {**made.to_json(), "n": 0},
        [],
    ):
        with pytest.raises(ValueError):
            Checkpoint.from_json(broken)


def test_any_changed_field_or_signature_fails_the_signature() -> None:
    key = SigningKey.generate()
    emitter = CheckpointEmitter("w", key, chain_keyed=False, every_records=2, clock=Clock())
    (made,) = emitter.add_many(_hashes(2))
    keys = {key.key_id: key.public}
    changes = {
        "writer_id": "w2",
        "n": 2,
        "tree_size": 3,
        "root_hash": "0" * 64,
        "chain_head": "x",
        "chain_keyed": True,
        "timestamp": "2030-01-01T00:00:00.000000Z",
        "prev": "1" * 64,
        "final": True,
    }
    for name, value in changes.items():
        forged = Checkpoint.from_json({**made.to_json(), name: value})
        assert checkpoint_problem(forged, keys) is not None, name
    raw = bytearray(base64.b64decode(made.signature))
    for bit in range(0, len(raw) * 8, 37):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        forged = Checkpoint.from_json({**made.to_json(), "signature": base64.b64encode(flipped).decode()})
        assert "does not verify" in str(checkpoint_problem(forged, keys))
    garbled = Checkpoint.from_json({**made.to_json(), "signature": "%%%"})
    assert "base64" in str(checkpoint_problem(garbled, keys))


# -- witnesses -----------------------------------------------------------------------------------


def test_a_file_witness_appends_fsynced_lines_0600_and_reads_them_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    witness = FileWitness(tmp_path / "witness.jsonl")
    emitter = CheckpointEmitter(
        "w", key, chain_keyed=False, every_records=2, clock=Clock(), publish=witness.publish
    )
    made = emitter.add_many(_hashes(6))
    assert stat.S_IMODE(witness.path.stat().st_mode) == 0o600
    assert witness.checkpoints() == made
    with witness.path.open("ab") as f:
        f.write(b'{"torn": ')  # a crash mid-line
    problems: list[str] = []
    assert read_checkpoints(witness.path, problems.append) == made
    assert len(problems) == 1 and "line 4" in problems[0]


def test_a_directory_witness_writes_its_checkpoints_file(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    witness = open_witness(str(tmp_path / "w"))
    assert isinstance(witness, FileWitness) and witness.path == tmp_path / "w" / "checkpoints.jsonl"
    emitter = CheckpointEmitter("w", SigningKey.generate(), chain_keyed=False, every_records=1, clock=Clock())
    witness.publish(emitter.add_many(_hashes(1))[0])
    assert len(read_checkpoints(tmp_path / "w")) == 1
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_checkpoints(tmp_path / "nothing.jsonl")


def test_a_command_witness_gets_each_checkpoint_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "pushed.jsonl"
    script = f"import sys; open({str(out)!r}, 'ab').write(sys.stdin.buffer.read())"
    witness = open_witness(f"command:{sys.executable} -c {script!r}")
    assert isinstance(witness, CommandWitness)
    emitter = CheckpointEmitter(
        "w", SigningKey.generate(), chain_keyed=False, every_records=2, clock=Clock(), publish=witness.publish
    )
    made = emitter.add_many(_hashes(4))
    assert read_checkpoints(out) == made
    failing = CommandWitness([sys.executable, "-c", "raise SystemExit(3)"])
    import subprocess

    with pytest.raises(subprocess.CalledProcessError):
        failing.publish(made[0])
    with pytest.raises(ConfigurationError):
        CommandWitness("")
