"""What the ingest management commands share: a progress bar fed by the job row."""

from tqdm import tqdm


class JobProgressBar:
    """A tqdm bar (shown only on a terminal) that follows an IngestJob's counts."""

    def __init__(self, description, unit="token"):
        self.bar = tqdm(desc=description, unit=unit, disable=None, dynamic_ncols=True)

    def __call__(self, job, *_):
        if job.items_expected and self.bar.total != job.items_expected:
            self.bar.total = job.items_expected
        self.bar.n = job.items_done + job.items_failed
        self.bar.set_postfix(failed=job.items_failed, refresh=False)
        self.bar.refresh()

    def count(self, n):
        self.bar.n = n
        self.bar.refresh()

    def close(self):
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
