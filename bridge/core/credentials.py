"""C2PA content credentials: every file the bridge writes is signed, saying it was made by a
trained model (digitalSourceType trainedAlgorithmicMedia), whether it may be used to train AI
(the CAWG training-and-data-mining assertion), and its recipe (`org.ganbridge.recipe`).

PNG, SVG and WAV files carry the signed manifest inside (a caBX chunk, a c2pa:manifest element, a
C2PA chunk); a MIDI file, which C2PA cannot hold, gets it beside it as a `.c2pa` sidecar. The signer is a local identity made on
first use under the data folder (`identity/`: an ES256 key readable by the user only and its
certificate, issued by a local CA), or a certificate and key the user gives. Readers say such a
self-made identity is untrusted (`signingCredential.untrusted`): the credentials show that the
file is unchanged since this identity signed it, not who the identity is. No thumbnail goes in
the manifest (with one, signing a 512² texture took 60 ms and added 340 KB; without, 2 ms and
4 KB). Nor does the C2PA library read each file back after signing it (`verify_after_sign`, half
of a 128² texture's signing time: 1.04 ms with it, 0.47 ms without); instead the bridge signs and
reads back one probe image when it starts, so an identity whose key does not fit its
certificate stops it there, with the reason, rather than marking every file invalid.
"""

from __future__ import annotations

import datetime
import io
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganbridge import __version__
from ganbridge.core.provenance import chunk_names, embed
from ganbridge.core.settings import ConfigError, Settings

TRAINED_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME = {"png": "image/png", "svg": "image/svg+xml", "wav": "audio/wav", "mid": "audio/midi"}
EMBEDDED = ("png", "svg", "wav")  # a MIDI file gets a sidecar
TRAINING_USES = ("cawg.ai_generative_training", "cawg.ai_training", "cawg.ai_inference", "cawg.data_mining")


@dataclass(frozen=True)
class Identity:
    """The signer: a PEM certificate chain (signer first) and its PEM private key."""

    chain: bytes
    key: bytes

    @classmethod
    def local(cls, folder: Path) -> Identity:
        """The identity in `folder`, made there on first use (the key readable by the user only)."""
        chain_path, key_path = folder / "chain.pem", folder / "key.pem"
        if not (chain_path.is_file() and key_path.is_file()):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)
            chain, key = _new_identity()
            descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as f:
                f.write(key)
            chain_path.write_bytes(chain)
        return cls(chain_path.read_bytes(), key_path.read_bytes())

    @classmethod
    def given(cls, cert: Path, key: Path) -> Identity:
        return cls(cert.read_bytes(), key.read_bytes())


@dataclass(frozen=True)
class Check:
    """What a reader makes of a file's credentials: `state` Valid, Invalid or None (there are
    none), the failure codes, and the recipe assertion."""

    state: str | None
    failures: list[str]
    recipe: dict | None

    @property
    def unchanged(self) -> bool:
        """Signed and not changed since (a self-made identity is untrusted, nothing else failed)."""
        return self.state is not None and not [f for f in self.failures if f != "signingCredential.untrusted"]


class ContentCredentials:
    def __init__(self, identity: Identity, allow_ai_training: bool = False) -> None:
        import c2pa

        self._identity = identity
        self._use = "allowed" if allow_ai_training else "notAllowed"
        settings = {"builder": {"thumbnail": {"enabled": False}}, "verify": {"verify_after_sign": False}}
        self._context = c2pa.Context(c2pa.Settings.from_dict(settings))
        self._signers = threading.local()
        self._probe()  # a bad certificate or key fails here, when the bridge starts, not per file

    def _probe(self) -> None:
        """Sign a 1x1 image and read it back: ValueError unless a reader finds it unchanged
        (c2pa no longer checks each signature it makes, see the module's docstring)."""
        probe = {"generator": "probe", "checkpoint": {"name": "probe", "sha256": "0" * 64}, "origin": "generate"}
        signer = self._signer()
        try:
            self._signers.signer = signer  # what sign() takes on this thread, closed below
            data, _ = self.sign(_tiny_png(), "png", probe)
        finally:
            self._signers.signer = None
            signer.close()
        result = check(data, "png")
        if not result.unchanged:
            problems = ", ".join(f for f in result.failures if f != "signingCredential.untrusted") or "no manifest"
            raise ValueError(f"a file signed with this identity does not verify ({problems})")

    def _signer(self) -> Any:
        import c2pa

        info = c2pa.C2paSignerInfo(
            alg=c2pa.C2paSigningAlg.ES256, sign_cert=self._identity.chain, private_key=self._identity.key, ta_url=None
        )
        return c2pa.Signer.from_info(info)

    def manifest(self, recipe: dict, fmt: str) -> dict:
        summary = {k: v for k, v in recipe.items() if k != "latent"}  # the latent is in the file's recipe
        return {
            "claim_generator_info": [{"name": "ganbridge", "version": __version__}],
            "title": f"ganbridge {recipe['generator']}",
            "assertions": [
                {
                    "label": "c2pa.actions",
                    "data": {
                        "actions": [
                            {
                                "action": "c2pa.created",
                                "digitalSourceType": TRAINED_MEDIA,
                                "softwareAgent": {"name": "ganbridge", "version": __version__},
                            }
                        ]
                    },
                },
                {
                    "label": "cawg.training-mining",
                    "data": {"entries": {use: {"use": self._use} for use in TRAINING_USES}},
                },
                {"label": "org.ganbridge.recipe", "data": summary},
            ],
            "ingredients": ingredients(recipe, fmt),
        }

    def sign(self, data: bytes, fmt: str, recipe: dict) -> tuple[bytes, bytes | None]:
        """(the file, signed; the sidecar manifest for a format that cannot hold one, else None)."""
        import c2pa

        builder = c2pa.Builder(self.manifest(recipe, fmt), self._context)
        try:
            out = io.BytesIO()
            if fmt in EMBEDDED:
                builder.sign(self._thread_signer(), MIME[fmt], io.BytesIO(data), out)
                return out.getvalue(), None
            builder.set_no_embed()
            return data, bytes(builder.sign(self._thread_signer(), MIME[fmt], io.BytesIO(data), out))
        finally:
            builder.close()

    def _thread_signer(self) -> Any:
        """This thread's signer, made on its first signature and kept: building one costs about a
        millisecond, and one signer is not shared between the worker threads that sign at once."""
        signer = getattr(self._signers, "signer", None)
        if signer is None:
            signer = self._signers.signer = self._signer()
        return signer


def ingredients(recipe: dict, fmt: str) -> list[dict]:
    """What an item was made from, as C2PA ingredients (`inputTo`: inputs of the generator): the
    checkpoint (its hash, and its model card's training-data manifest) and, for an item drawn from
    others (variations, blends, steering), each parent item of the bridge's store."""
    checkpoint = recipe["checkpoint"]
    model = {
        "title": f"{checkpoint['name']}.safetensors",
        "format": "application/octet-stream",
        "relationship": "inputTo",
        "instance_id": f"ganbridge:checkpoint:{checkpoint['sha256']}",
        "description": f"the {recipe['generator']} checkpoint {checkpoint['name']!r} (safetensors weights)",
        "data_types": [{"type": "c2pa.types.model.pytorch"}],
        "metadata": {"org.ganbridge.checkpoint": dict(checkpoint)},
    }
    parents = [
        {
            "title": f"ganbridge item {parent}",
            "format": MIME[fmt],
            "relationship": "inputTo",
            "instance_id": f"ganbridge:item:{parent}",
            "description": f"a {recipe['origin']} input: the item whose latent this one was drawn from",
        }
        for parent in recipe.get("parents", [])
    ]
    return [model, *parents]


def seal(
    data: bytes, fmt: str, recipe: dict, credentials: ContentCredentials | None, map_name: str | None = None
) -> tuple[bytes, bytes | None]:
    """A file as the bridge and the CLI write it: its recipe inside (a map's naming the map) and,
    with `credentials`, signed; the second is the manifest a MIDI file keeps beside it."""
    recipe = recipe if map_name is None else {**recipe, "map": map_name}
    data = embed(data, fmt, recipe)
    return (data, None) if credentials is None else credentials.sign(data, fmt, recipe)


def credentials_for(settings: Settings) -> ContentCredentials | None:
    """The signer the settings ask for: None with `credentials` off."""
    if not settings.credentials:
        return None
    cert, key = settings.credentials_cert, settings.credentials_key
    if (cert is None) != (key is None):
        raise ConfigError(
            "credentials_cert and credentials_key go together: give both, or neither for a local identity"
        )
    try:
        identity = Identity.given(cert, key) if cert and key else Identity.local(settings.data_dir / "identity")
        return ContentCredentials(identity, settings.allow_ai_training)
    except OSError as e:
        raise ConfigError(f"cannot read or make the signing identity: {e}") from None
    except Exception as e:  # c2pa refuses the certificate or key
        raise ConfigError(f"the signing certificate or key is not usable for C2PA: {e}") from None


def check(data: bytes, fmt: str, sidecar: bytes | None = None) -> Check:
    """Read a file's credentials (embedded, or from `sidecar`) with the C2PA reader."""
    import c2pa

    try:
        reader = (
            c2pa.Reader(MIME[fmt], io.BytesIO(data), manifest_data=sidecar)
            if sidecar
            else c2pa.Reader(MIME[fmt], io.BytesIO(data))
        )
    except c2pa.C2paError as e:
        if sidecar is None and not has_manifest(data, fmt):
            return Check(None, [], None)
        return Check("Invalid", [f"the manifest cannot be read ({e})"], None)
    try:
        results = reader.get_validation_results() or {}
        failures = [f["code"] for f in results.get("activeManifest", {}).get("failure", [])]
        manifest = reader.get_active_manifest() or {}
        recipe = next((a["data"] for a in manifest.get("assertions", []) if a["label"] == "org.ganbridge.recipe"), None)
        return Check(reader.get_validation_state(), failures, recipe)
    finally:
        reader.close()


def _tiny_png() -> bytes:
    """A valid 1x1 grey PNG (the probe image), without an image library."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")
    )


def has_manifest(data: bytes, fmt: str) -> bool:
    """Whether an embedded manifest is there at all (read or not)."""
    if fmt == "svg":
        return b"<c2pa:manifest>" in data
    return {"png": b"caBX", "wav": b"C2PA"}.get(fmt, b"-") in chunk_names(data)


def _new_identity() -> tuple[bytes, bytes]:
    """A local CA and an ES256 signing certificate issued by it, as C2PA readers require (a
    signer's certificate is not a CA, signs digitally, and names an e-mail protection use)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ganbridge local identity"),
            ]
        )

    def usage(sign: bool, certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(sign, False, False, False, False, certs, certs, False, False)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public: Any, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("ganbridge local CA"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(usage(not ca, ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )

    ca = certificate("ganbridge local CA", ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    leaf = (
        certificate("ganbridge on this machine", key.public_key(), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, private
