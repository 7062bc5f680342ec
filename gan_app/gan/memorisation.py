"""Memorisation checks: how close is each generated image to its nearest training image?

Distances:
- pixels: root-mean-square difference of the images' values scaled to [0, 1] (compared at the
  training images' size; generated images of another size are resized to it), so 0 is an exact
  copy and 1 is black vs white everywhere;
- features: Euclidean distance between feature vectors (e.g. the trait classifier's).

Near-copy rule (both spaces): distance <= ``threshold``, where by default
``threshold = DEFAULT_THRESHOLD_FRACTION x median real-to-real nearest-neighbour distance``
(each sampled training image to its nearest *other* training image; exact duplicates inside the
training set are left out of the median). Distinct real images of the collection therefore sit
around 1 (in units of that median); a generated image at a small fraction of it is closer to
a training image than real tokens are to each other.

With a trait reader (``NearCopyIndex.check(images, read=...)``, e.g. a trait classifier's
``read_values``) a close image is a near-copy only when it also *reads as the same traits* as
that training image. Layered collections hold distinct tokens a few cells apart (the same
punk with and without an earring: 7.6% of the CryptoPunks sample, 5.5% of the demo, have such
a neighbour under the threshold); a new trait combination drawn that cleanly is a new token
in the collection's own terms, not a copy. A copy, or a copy with a few stray cells, reads as
its original does, so it is still flagged.
"""

import io

import numpy as np

from gan_app.gan.features import check_images, resize_images

DEFAULT_THRESHOLD_FRACTION = 0.25
_CANDIDATES = 16
_QUERY_BLOCK = 256
_SMALL_QUERY = 4


class NearestNeighbours:
    """Exact nearest neighbour (squared Euclidean) among the rows of ``vectors`` (N, D).

    For long vectors, candidates come from a PCA projection. With ``p`` the projection onto
    orthonormal components and ``r`` the norm of what it leaves out,
    ``|p(a) - p(b)|² + (r(a) - r(b))²`` never exceeds ``|a - b|²``; once the true distance of
    the best candidate is below that bound for every non-candidate, it is the exact nearest
    neighbour. Queries failing the test go on by branch and bound (more candidates in order of
    their bound until the bound passes the best distance). Either way the answer is exact; the
    projection only makes one query against 10k images take about a millisecond.
    """

    def __init__(self, vectors, components=64, seed=0, basis=None, mean=None):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise ValueError(f"need a non-empty (N, D) array, got shape {self.vectors.shape}")
        if basis is None and self.vectors.shape[1] > 2 * components:
            mean, basis = _pca_basis(self.vectors, components, seed)
        self.mean, self.basis = mean, basis
        self._norms = np.einsum("nd,nd->n", self.vectors, self.vectors, dtype=np.float64)
        if basis is not None:
            self._coarse, self._residuals = self._project(self.vectors)
            self._coarse_norms = (self._coarse * self._coarse).sum(axis=1)

    def _project(self, vectors):
        centred = np.asarray(vectors, dtype=np.float64) - self.mean
        coarse = centred @ self.basis
        residual = (centred * centred).sum(axis=1) - (coarse * coarse).sum(axis=1)
        return coarse, np.sqrt(np.maximum(residual, 0))

    def query(self, queries, exclude=None):
        """``(squared distances (Q,), indices (Q,))``; ``exclude[i]`` is a row to skip for
        query i (a training image looking for its nearest *other* image)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.vectors.shape[1]:
            raise ValueError(
                f"queries must have shape (Q, {self.vectors.shape[1]}), got {queries.shape}"
            )
        exclude = None if exclude is None else np.asarray(exclude, dtype=np.int64)
        distances = np.empty(len(queries))
        indices = np.empty(len(queries), dtype=np.int64)
        for start in range(0, len(queries), _QUERY_BLOCK):
            block = slice(start, start + _QUERY_BLOCK)
            skip = None if exclude is None else exclude[block]
            if self.basis is None:
                distances[block], indices[block] = self._full_search(queries[block], skip)
            else:
                distances[block], indices[block] = self._pruned_search(queries[block], skip)
        return distances, indices

    def _pruned_search(self, queries, exclude):
        coarse, residuals = self._project(queries)
        if len(queries) <= _SMALL_QUERY:
            # Numpy's own loop: a multi-threaded BLAS call for one row costs several ms more
            # when the worker's cores are busy, and a release check is one image.
            cross = np.einsum("qk,nk->qn", coarse, self._coarse)
        else:
            cross = coarse @ self._coarse.T
        bound = (coarse * coarse).sum(axis=1, keepdims=True) + self._coarse_norms - 2 * cross
        np.maximum(bound, 0, out=bound)
        bound += (residuals[:, None] - self._residuals) ** 2
        distances, indices, candidates = self._best_candidates(queries, bound, exclude)
        # Every non-candidate's bound is >= the largest candidate bound; while that is below
        # the best true distance found, a non-candidate might be nearer.
        rows = np.arange(len(queries))
        unsure = bound[rows[:, None], candidates].max(axis=1) < distances
        if candidates.shape[1] < bound.shape[1]:
            for row in np.flatnonzero(unsure):
                skip = None if exclude is None else exclude[row]
                distances[row], indices[row] = self._branch_and_bound(
                    queries[row], bound[row], skip
                )
        return distances, indices

    def _branch_and_bound(self, query, bound, skip):
        """Exact distances in rising order of the bound, in growing chunks, until the next
        bound exceeds the best distance: near-duplicate clusters cost their size, not N."""
        order = np.argsort(bound)
        best, best_index = np.inf, -1
        start, step = 0, _CANDIDATES
        while start < len(order) and bound[order[start]] < best:
            chunk = order[start : start + step]
            diff = self.vectors[chunk] - query
            exact = np.einsum("cd,cd->c", diff, diff, dtype=np.float64)
            if skip is not None:
                exact[chunk == skip] = np.inf
            nearest = int(exact.argmin())
            if exact[nearest] < best:
                best, best_index = float(exact[nearest]), int(chunk[nearest])
            start, step = start + step, step * 2
        return best, best_index

    def _full_search(self, queries, exclude):
        """All distances by one matrix product (rounding only picks candidates), then exact."""
        approx = (
            np.einsum("qd,qd->q", queries, queries, dtype=np.float64)[:, None]
            + self._norms
            - 2 * (queries @ self.vectors.T)
        )
        distances, indices, _ = self._best_candidates(queries, approx, exclude)
        return distances, indices

    def _best_candidates(self, queries, scores, exclude):
        rows = np.arange(len(queries))
        if exclude is not None:
            scores[rows, exclude] = np.inf
        count = min(_CANDIDATES, scores.shape[1])
        candidates = np.argpartition(scores, count - 1, axis=1)[:, :count]
        diff = self.vectors[candidates] - queries[:, None, :]
        exact = np.einsum("qcd,qcd->qc", diff, diff, dtype=np.float64)
        if exclude is not None:
            exact[candidates == exclude[:, None]] = np.inf
        best = exact.argmin(axis=1)
        return exact[rows, best], candidates[rows, best], candidates


def _pca_basis(vectors, components, seed):
    """Approximate top principal directions (randomised range finder on at most 2000 rows):
    any orthonormal basis keeps the search exact, a better one just prunes more."""
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), 2000), replace=False)]
    sample = sample.astype(np.float64)
    mean = sample.mean(axis=0)
    centred = sample - mean
    basis = centred.T @ (centred @ rng.standard_normal((centred.shape[1], components + 8)))
    for _ in range(2):
        basis, _ = np.linalg.qr(basis)
        basis = centred.T @ (centred @ basis)
    basis, _ = np.linalg.qr(basis)
    _, _, vt = np.linalg.svd(centred @ basis, full_matrices=False)
    return mean, basis @ vt[:components].T


def real_nn_distances(neighbours, sample=500, seed=0):
    """Distance from up to ``sample`` reference rows to their nearest *other* reference row."""
    return real_neighbours(neighbours, sample, seed)[1]


def real_neighbours(neighbours, sample=500, seed=0):
    """``(rows, distances, nearest)``: up to ``sample`` reference rows, the distance to their
    nearest *other* reference row and that row."""
    count = len(neighbours.vectors)
    if count < 2:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    rows = np.random.default_rng(seed).choice(count, min(sample, count), replace=False)
    squared, nearest = neighbours.query(neighbours.vectors[rows], exclude=rows)
    return rows, np.sqrt(squared), nearest


def calibrated_threshold(real_distances, fraction=DEFAULT_THRESHOLD_FRACTION):
    """``(threshold, median)``: fraction x median of the non-zero real-to-real NN distances."""
    nonzero = np.asarray(real_distances)[np.asarray(real_distances) > 0]
    median = float(np.median(nonzero)) if len(nonzero) else 0.0
    return fraction * median, median


def pixel_vectors(images, size):
    """uint8 ``(N, H, W, 3)`` → float32 ``(N, size*size*3)`` in [0, 1] at ``size`` x ``size``."""
    return resize_images(check_images(images), size).reshape(len(images), -1) / 255.0


class NearCopyIndex:
    """Flags generated images that are (near) copies of training images, in pixel space.

    Fit once per generator's training set; ``check`` is then fast enough to run before every
    image is released (about a millisecond for one image against 10k training images).
    """

    def __init__(self, images, neighbours, threshold, real_nn_median, fraction):
        self.images = images
        self.neighbours = neighbours
        self.threshold = threshold
        self.real_nn_median = real_nn_median
        self.fraction = fraction

    @property
    def size(self):
        return self.images.shape[1]

    @classmethod
    def fit(
        cls,
        training_images,
        *,
        threshold=None,
        fraction=DEFAULT_THRESHOLD_FRACTION,
        calibration_sample=500,
        components=64,
        seed=0,
    ):
        """Index square uint8 ``(N, S, S, 3)`` training images.

        The threshold is ``fraction`` x the median real-to-real NN distance (see the module
        docstring) unless an absolute RMS ``threshold`` is given.
        """
        images = check_images(training_images, "training images")
        if images.shape[1] != images.shape[2]:
            raise ValueError(f"training images must be square, got {images.shape[1:3]}")
        vectors = pixel_vectors(images, images.shape[1])
        neighbours = NearestNeighbours(vectors, components=components, seed=seed)
        real = _rms(real_nn_distances(neighbours, calibration_sample, seed), vectors.shape[1])
        calibrated, median = calibrated_threshold(real, fraction)
        chosen = calibrated if threshold is None else float(threshold)
        return cls(images, neighbours, chosen, median, fraction)

    def nearest(self, images):
        """``(RMS distances (N,), index of the nearest training image (N,))``."""
        vectors = pixel_vectors(images, self.size)
        squared, indices = self.neighbours.query(vectors)
        return _rms(np.sqrt(squared), vectors.shape[1]), indices

    def check(self, images, read=None):
        """``(distances (N,), is_near_copy (N,) bool)``: distance <= threshold flagged, and
        with ``read`` (images -> one trait reading each, comparable with ``==``) only those
        that read as the same traits as their nearest training image (module docstring)."""
        distances, nearest = self.nearest(images)
        return distances, self.same_reading(images, nearest, distances <= self.threshold, read)

    def same_reading(self, images, nearest, close, read=None):
        """``close`` (N,) bool, narrowed with ``read`` to the images that read as the same
        traits as their training image ``nearest`` (only the close ones are read)."""
        close = np.array(close, dtype=bool)
        rows = np.flatnonzero(close)
        if read is None or not len(rows):
            return close
        ours = read(np.asarray(images)[rows])
        theirs = read(self.images[np.asarray(nearest)[rows]])
        close[rows] = [a == b for a, b in zip(ours, theirs, strict=True)]
        return close

    def save(self, destination):
        """An ``.npz`` (path or binary file): the training images, PCA basis and threshold."""
        np.savez_compressed(
            destination,
            images=self.images,
            mean=self.neighbours.mean if self.neighbours.basis is not None else np.zeros(0),
            basis=self.neighbours.basis if self.neighbours.basis is not None else np.zeros(0),
            numbers=np.array([self.threshold, self.real_nn_median, self.fraction]),
        )

    @classmethod
    def load(cls, source):
        with np.load(source) as data:
            images, mean, basis = data["images"], data["mean"], data["basis"]
            threshold, median, fraction = (float(x) for x in data["numbers"])
        vectors = pixel_vectors(images, images.shape[1])
        neighbours = NearestNeighbours(
            vectors, basis=basis if basis.size else None, mean=mean if mean.size else None
        )
        return cls(images, neighbours, threshold, median, fraction)

    def to_bytes(self):
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()


def _rms(euclidean, dims):
    return np.asarray(euclidean) / np.sqrt(dims)


def nearest_feature_distances(queries, references, exclude=None):
    """Euclidean distance from each query row to its nearest reference row (feature space)."""
    neighbours = NearestNeighbours(np.asarray(references, dtype=np.float32))
    squared, _ = neighbours.query(np.asarray(queries, dtype=np.float32), exclude=exclude)
    return np.sqrt(squared)


def distance_summary(distances, threshold, real_median, flagged=None):
    """JSON figures for a set of NN distances under one near-copy threshold (``flagged``:
    the near-copies when a rule narrower than the threshold alone decided them)."""
    distances = np.asarray(distances, dtype=np.float64)
    flagged = distances <= threshold if flagged is None else np.asarray(flagged, dtype=bool)
    return {
        "nn_mean": float(distances.mean()),
        "nn_median": float(np.median(distances)),
        "nn_min": float(distances.min()),
        "nn_median_relative": float(np.median(distances) / real_median) if real_median else None,
        "threshold": float(threshold),
        "near_copy_count": int(flagged.sum()),
        "near_copy_share": float(flagged.mean()),
    }
