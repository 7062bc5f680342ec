"""Import (then export) a 10,000-token seed archive of 24x24 images; print JSON lines.

The archive pair is drawn from the demo collection (sprites scaled to 24x24, like the
CryptoPunks sample) before the clock starts. Target: import in <= 30 s on a 2-core machine.
Besides wall time it prints the import's CPU seconds and the load average, because on a
shared machine the wall time says as much about the neighbours as about the import.

    python bench/import_archive.py [--tokens 10000]
"""

import argparse
import io
import json
import os
import resource
import time

import ingest_scratch

SCRATCH = ingest_scratch.setup()

from PIL import Image  # noqa: E402

from collections_app.demo import build as demo  # noqa: E402
from collections_app.ingest.archives import (  # noqa: E402
    ArchivePairWriter,
    export_archive,
    import_archive,
)
from collections_app.models import IngestJob, Token, Trait  # noqa: E402


def cpu_seconds():
    """CPU time of this process (all threads, SQLite included): a figure other load spares."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_archives(tokens):
    writer = ArchivePairWriter(str(SCRATCH / "in"), "bench-punks")
    for token in demo.demo_tokens(tokens, 24, "bench-punks"):
        small = Image.open(io.BytesIO(token.png)).resize((24, 24), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        small.save(buffer, "PNG")
        writer.add(token.token_id, token.metadata, buffer.getvalue())
    writer.close()
    return writer.images_path, writer.metadata_path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    args = parser.parse_args()
    images, metadata = write_archives(args.tokens)

    job = IngestJob.objects.create(kind=IngestJob.Kind.ARCHIVE_IMPORT)
    job.claim()
    started, cpu_started = time.monotonic(), cpu_seconds()
    summary = import_archive(images, metadata, job=job)
    imported, import_cpu = time.monotonic() - started, cpu_seconds() - cpu_started
    started = time.monotonic()
    exported = export_archive(summary.collection, SCRATCH / "out")
    export_seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "bench": "import_archive",
                "database": ingest_scratch.database_label(),
                "tokens": Token.objects.count(),
                "traits": Trait.objects.count(),
                "with_problems": summary.with_problems,
                "import_s": round(imported, 2),
                "import_tokens_per_s": round(args.tokens / imported, 1),
                "import_cpu_s": round(import_cpu, 2),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "target_import_s": 30,
                "export_s": round(export_seconds, 2),
                "exported_images": exported.images,
            }
        )
    )


if __name__ == "__main__":
    main()
