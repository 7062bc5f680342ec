"""Seed archives (docs: archive-format.md): import with guards, export in the same format.

An archive pair is ``{slug}_archive.zip`` (one image per token) and
``{slug}_metadata_archive.zip`` (one OpenSea v1 asset JSON per token), entries named by token
id, optionally under one top folder. Archives come from strangers, so nothing in one is
trusted: entry names are never used as file paths (we read members into memory and store
images under content hashes, so a ``../`` name cannot escape anywhere, and is refused anyway),
declared sizes and compression ratios are checked before a byte is inflated, and every member is
read with its declared size as a hard cap.
"""

import io
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.text import slugify

from collections_app.models import Collection, IngestJob, Token
from nftsite.parsing import MAX_DIGITS, is_ascii_int
from nftsite.storage import private_storage

from .images import EXTENSION_FORMATS, FORMAT_EXTENSIONS, original_name, read_original
from .importer import RawItem, import_items
from .jobs import set_expected
from .records import MAX_METADATA_BYTES, RARITY_KEY
from .upsert import finalize_collection

BATCH_SIZE = 250
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # exports are byte-identical run to run
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.[^/]*$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


class ArchiveError(Exception):
    """The archive as a whole cannot be used (not a zip, a bomb, missing); one line, no trace."""


@dataclass
class ArchiveIndex:
    """Usable members by token id, plus a failure for every member that was refused."""

    path: str
    members: dict = field(default_factory=dict)  # token id -> ZipInfo
    problems: dict = field(default_factory=dict)  # token id -> why its member is refused
    failures: list = field(default_factory=list)  # members that are no token at all
    top_folders: set = field(default_factory=set)


# --- Sources ---------------------------------------------------------------------------------
def s3_client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        region_name=settings.AWS_S3_REGION_NAME,
    )


def _split_s3(url):
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise ArchiveError(f"{url} is not an s3://bucket/key URL")
    return parts.netloc, key


@contextmanager
def open_source(source):
    """A local path for ``source``: a path, ``s3://bucket/key`` or ``storage:<name>`` (uploads).

    Remote archives are copied to a temporary file first (zip needs to seek), and removed after.
    """
    source = str(source)
    if source.startswith("s3://") or source.startswith("storage:"):
        with tempfile.TemporaryDirectory(prefix="nff-archive-") as tmp:
            local = Path(tmp) / (PurePosixPath(urlsplit(source).path).name or "archive.zip")
            if source.startswith("s3://"):
                _download_s3(source, local)
            else:
                _copy_from_storage(source.removeprefix("storage:"), local)
            yield str(local)
        return
    path = Path(source).expanduser()
    if not path.is_file():
        raise ArchiveError(f"{source}: no such file")
    yield str(path)


def _download_s3(url, local):
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split_s3(url)
    client = s3_client()
    try:
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size > settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES:
            raise ArchiveError(f"{url} is {size:,} bytes, over the archive size limit")
        client.download_file(bucket, key, str(local))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"404", "NoSuchKey", "NoSuchBucket"}:
            raise ArchiveError(f"{url}: not found") from None
        raise ArchiveError(f"{url}: S3 refused ({code or exc})") from None
    except BotoCoreError as exc:
        raise ArchiveError(f"{url}: {exc}") from None


def _copy_from_storage(name, local):
    if not private_storage().exists(name):
        raise ArchiveError(f"uploaded archive {name} is gone")
    with private_storage().open(name, "rb") as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)


def upload_destination(outdir):
    """For s3:// output, a (bucket, prefix) pair; None for a local directory."""
    if str(outdir).startswith("s3://"):
        parts = urlsplit(str(outdir))
        return parts.netloc, parts.path.strip("/")
    return None


# --- Reading ---------------------------------------------------------------------------------
def _unsafe(name):
    if name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part in {"..", "."} for part in name.split("/"))


def scan_archive(path, kind):
    """Index a zip's members by token id without inflating anything; refuse what is unsafe.

    ``kind`` is "images" or "metadata". Raises ArchiveError when the archive as a whole must
    be refused (not a zip, too many members, too much declared data).
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{Path(path).name} is not a readable zip archive ({exc})") from None
    with archive:
        infos = archive.infolist()
    if len(infos) > settings.ARCHIVE_MAX_ENTRIES:
        raise ArchiveError(
            f"{Path(path).name} has {len(infos):,} members (limit {settings.ARCHIVE_MAX_ENTRIES:,})"
        )
    declared = sum(info.file_size for info in infos)
    if declared > settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES:
        raise ArchiveError(
            f"{Path(path).name} would inflate to {declared:,} bytes "
            f"(limit {settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES:,}): refused as a zip bomb"
        )
    index = ArchiveIndex(path=path)
    seen = {}
    for info in infos:
        name = info.filename
        if info.is_dir() or _JUNK.search(name):
            continue
        problem, token_id = _check_member(info, kind)
        if problem and token_id is None:
            index.failures.append({"item": name, "reason": problem, "imported": False})
            continue
        if problem:
            index.problems[token_id] = problem
            continue
        parts = name.split("/")
        if len(parts) == 2:
            index.top_folders.add(parts[0])
        seen.setdefault(token_id, []).append(info)
    for token_id, members in seen.items():
        if token_id in index.problems or len(members) > 1:
            names = ", ".join(m.filename for m in members[:5])
            index.problems[token_id] = f"duplicate {kind} files: {names}"
        else:
            index.members[token_id] = members[0]
    return index


def _check_member(info, kind):
    """(problem, token_id): problem is None for a member we will read."""
    name = info.filename
    if _unsafe(name):
        return "unsafe path refused (zip slip)", None
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic links are refused", None
    parts = name.split("/")
    if len(parts) > 2:
        return "nested deeper than one top folder", None
    stem, ext = os.path.splitext(parts[-1])
    ext = ext.lower()
    # ASCII digits only: "²".isdigit() is true and int("²") raises.
    token_id = str(int(stem)) if is_ascii_int(stem) and len(stem) <= MAX_DIGITS else None
    if token_id is None:
        return "file name is not a token id", None
    if info.flag_bits & 0x1:
        return f"{name}: encrypted members are refused", token_id
    if kind == "images" and ext not in EXTENSION_FORMATS:
        return f"{name}: not an image file (expected .png, .jpg, .gif or .webp)", token_id
    if kind == "metadata" and ext != ".json":
        return f"{name}: not a .json file", token_id
    limit = settings.INGEST_MAX_IMAGE_BYTES if kind == "images" else MAX_METADATA_BYTES
    if info.file_size > limit:
        return f"{name}: {info.file_size:,} bytes uncompressed (limit {limit:,})", token_id
    if info.file_size > settings.ARCHIVE_RATIO_CHECK_FROM_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > settings.ARCHIVE_MAX_RATIO:
            return f"{name}: compression ratio {ratio:,.0f}:1 refused as a zip bomb", token_id
    return None, token_id


def _read_member(archive, info):
    # ZipExtFile never returns more than the declared file_size and checks the CRC at the end,
    # so a member that lies about its size fails here instead of filling memory.
    with archive.open(info) as fh:
        return fh.read(info.file_size + 1)


def derive_slug(images_source, index=None):
    """``cryptopunks_archive.zip`` -> ``cryptopunks``; else the zip's one top folder; else ""."""
    name = PurePosixPath(urlsplit(str(images_source)).path).name
    stem = name.removesuffix("_archive.zip") if name.endswith("_archive.zip") else ""
    if not stem and name.endswith(".zip") and not name.startswith("_"):
        stem = name.removesuffix(".zip")
    if slugify(stem):
        return slugify(stem)
    if index and len(index.top_folders) == 1:
        return slugify(next(iter(index.top_folders)))
    return ""


# --- Import ----------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    collection: Collection
    tokens_in_archive: int
    written: int
    clean: int
    with_problems: int
    rejected: int

    @property
    def message(self):
        text = (
            f"{self.written} of {self.tokens_in_archive} tokens imported into "
            f"{self.collection.slug} ({self.with_problems} with problems), "
            f"{self.rejected} items refused"
        )
        return text + ("; see the per-item errors" if self.with_problems or self.rejected else "")


def import_archive(images_source, metadata_source, *, slug=None, job=None, on_progress=None):
    """Import an archive pair into the collection ``slug`` (derived from the file name if None).

    With ``job``, progress commits per batch and a job that already has a cursor continues
    after it. Returns an :class:`ImportSummary`; raises ArchiveError for whole-archive problems.
    """
    with open_source(images_source) as images_path, open_source(metadata_source) as meta_path:
        images = scan_archive(images_path, "images")
        metadata = scan_archive(meta_path, "metadata")
        slug = slug or derive_slug(images_source, images)
        if not slug:
            raise ArchiveError("cannot tell the collection slug from the archive name; pass --slug")
        collection = _collection_for(slug, metadata)
        if job is not None and job.collection_id != collection.pk:
            IngestJob.objects.filter(pk=job.pk).update(collection=collection)
            job.collection = collection
        token_ids = sorted(
            set(images.members)
            | set(metadata.members)
            | set(images.problems)
            | set(metadata.problems),
            key=int,
        )
        failures = images.failures + metadata.failures
        if job is not None:
            set_expected(job, len(token_ids) + len(failures))
        start_after = int(job.cursor) if job is not None and is_ascii_int(job.cursor) else -1
        if start_after >= 0:
            failures = []  # reported by the run that got this far
        todo = [t for t in token_ids if int(t) > start_after]
        with zipfile.ZipFile(images_path) as izip, zipfile.ZipFile(meta_path) as mzip:
            batches = _batches(todo, images, metadata, izip, mzip)
            counts = import_items(
                collection, batches, job=job, on_progress=on_progress, failures=failures
            )
    finalize_collection(collection)
    ensure_cover(collection)
    return ImportSummary(
        collection=collection,
        tokens_in_archive=len(token_ids),
        written=counts.written,
        clean=counts.clean,
        with_problems=counts.with_problems,
        rejected=counts.rejected,
    )


def _batches(token_ids, images, metadata, izip, mzip):
    for start in range(0, len(token_ids), BATCH_SIZE):
        batch = []
        for token_id in token_ids[start : start + BATCH_SIZE]:
            item = RawItem(token_id=token_id)
            for archive, index, attr in ((izip, images, "image"), (mzip, metadata, "metadata")):
                info = index.members.get(token_id)
                if token_id in index.problems:
                    setattr(item, f"{attr}_problem", index.problems[token_id])
                elif info is not None:
                    try:
                        setattr(item, attr, _read_member(archive, info))
                    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                        setattr(item, f"{attr}_problem", f"{attr} member is corrupt: {exc}")
            if item.image is None and not item.image_problem:
                item.image_problem = "no image in the images archive"
            batch.append(item)
        yield batch


def _collection_for(slug, metadata_index):
    collection = Collection.objects.filter(slug=slug).first()
    if collection:
        return collection
    contract = {}
    if metadata_index.members:
        first = min(metadata_index.members, key=int)
        with zipfile.ZipFile(metadata_index.path) as mzip:
            try:
                data = json.loads(_read_member(mzip, metadata_index.members[first]))
                contract = data.get("asset_contract") or {}
            except (ValueError, AttributeError, OSError, zipfile.BadZipFile):
                contract = {}
    collection, _ = Collection.objects.get_or_create(
        slug=slug,
        defaults={
            "name": str(contract.get("name") or slug.replace("-", " ").title())[:300],
            "source": Collection.Source.ARCHIVE,
            "contract_address": str(contract.get("address") or "")[:64],
            "schema_name": str(contract.get("schema_name") or "")[:32],
        },
    )
    return collection


# --- Covers ----------------------------------------------------------------------------------
def ensure_cover(collection, grid=3):
    """Give a collection without a cover one: its first tokens' images on a grid."""
    from PIL import Image

    if collection.cover_image:
        return
    tokens = list(
        collection.tokens.exclude(image="").order_by("token_number", "token_id")[: grid * grid]
    )
    if not tokens:
        return
    images = []
    for token in tokens:
        with default_storage.open(token.image.name, "rb") as fh:
            images.append(Image.open(io.BytesIO(fh.read())).convert("RGBA"))
    cell = max(max(im.size) for im in images)
    cell = min(cell, 256)
    sheet = Image.new("RGBA", (cell * grid, cell * grid), (0, 0, 0, 0))
    for i, im in enumerate(images):
        im.thumbnail((cell, cell), Image.Resampling.NEAREST)
        sheet.paste(im, ((i % grid) * cell, (i // grid) * cell))
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    save_cover(collection, buffer.getvalue())


def save_cover(collection, png_bytes):
    from django.core.files.base import ContentFile

    collection.cover_image.save(f"{collection.slug}.png", ContentFile(png_bytes), save=False)
    Collection.objects.filter(pk=collection.pk).update(cover_image=collection.cover_image.name)


# --- Export ----------------------------------------------------------------------------------
@dataclass
class ExportSummary:
    images_path: str
    metadata_path: str
    tokens: int
    images: int

    @property
    def message(self):
        return (
            f"{self.tokens} tokens exported ({self.images} images) to "
            f"{self.images_path} and {self.metadata_path}"
        )


def archive_names(slug):
    return f"{slug}_archive.zip", f"{slug}_metadata_archive.zip"


def dump_metadata(metadata):
    """How every metadata JSON we write looks (indent 1, as OpenSea's exports were)."""
    return json.dumps(metadata, indent=1, ensure_ascii=False).encode("utf-8")


class ArchivePairWriter:
    """Writes ``{slug}_archive.zip`` + ``{slug}_metadata_archive.zip`` deterministically."""

    def __init__(self, directory, slug):
        self.slug = slug
        os.makedirs(directory, exist_ok=True)
        images_name, metadata_name = archive_names(slug)
        self.images_path = os.path.join(directory, images_name)
        self.metadata_path = os.path.join(directory, metadata_name)
        self._images = zipfile.ZipFile(self.images_path + ".part", "w")
        self._metadata = zipfile.ZipFile(self.metadata_path + ".part", "w")

    def add(self, token_id, metadata, image=None, image_format="PNG"):
        if image is not None:
            name = f"{self.slug}/{token_id}{FORMAT_EXTENSIONS[image_format]}"
            self._images.writestr(_member(name), image)
        self._metadata.writestr(_member(f"{self.slug}/{token_id}.json"), dump_metadata(metadata))

    def close(self):
        self._images.close()
        self._metadata.close()
        os.replace(self.images_path + ".part", self.images_path)
        os.replace(self.metadata_path + ".part", self.metadata_path)

    def abort(self):
        for archive in (self._images, self._metadata):
            archive.close()
            os.unlink(archive.filename)


def _member(name):
    info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def export_metadata(token):
    """The token's metadata as stored, plus our rarity figures under RARITY_KEY when known."""
    metadata = dict(token.metadata)
    rarity = {
        name: getattr(token, name)
        for name in ("rarity_score", "rarity_rank", "ic_score", "ic_rank")
        if getattr(token, name) is not None
    }
    if rarity:
        metadata[RARITY_KEY] = rarity
    if "token_id" not in metadata:
        metadata = {"token_id": token.token_id, **metadata}
    return metadata


def export_archive(collection, outdir, *, on_progress=None):
    """Write the collection's archive pair to a directory or ``s3://bucket/prefix``."""
    destination = upload_destination(outdir)
    if destination is None:
        Path(outdir).mkdir(parents=True, exist_ok=True)
        return _export_to(collection, str(outdir), on_progress)
    bucket, prefix = destination
    with tempfile.TemporaryDirectory(prefix="nff-export-") as tmp:
        summary = _export_to(collection, tmp, on_progress)
        client = s3_client()
        keys = []
        for path in (summary.images_path, summary.metadata_path):
            key = f"{prefix}/{os.path.basename(path)}" if prefix else os.path.basename(path)
            client.upload_file(path, bucket, key)
            keys.append(f"s3://{bucket}/{key}")
    summary.images_path, summary.metadata_path = keys
    return summary


def _export_to(collection, directory, on_progress):
    writer = ArchivePairWriter(directory, collection.slug)
    count = images = 0
    try:
        tokens = Token.objects.filter(collection=collection).order_by("token_number", "token_id")
        for token in tokens.iterator(chunk_size=500):
            image = _export_image(token)
            writer.add(token.token_id, export_metadata(token), image, token.image_format or "PNG")
            count += 1
            images += image is not None
            if on_progress and count % 100 == 0:
                on_progress(count)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return ExportSummary(writer.images_path, writer.metadata_path, count, images)


def _export_image(token):
    """The original bytes when we have them, else the stored PNG (then exported as .png)."""
    if original_name(token) and default_storage.exists(original_name(token)):
        return read_original(token)
    if token.image:
        token.image_format = "PNG"
        with default_storage.open(token.image.name, "rb") as fh:
            return fh.read()
    return None
