"""Distribution metrics for generated images: FID, KID, Inception Score, total variation,
precision/recall/density/coverage, valid-token rate, palette conformity and diversity.

Pure numpy/scipy; every function takes feature arrays or probabilities, never images, so the
same maths serves Inception-v3 features and the trait classifier's domain features.

Shapes: ``features`` are ``(N, D)`` arrays (any float dtype; everything is computed in float64),
one row per image. ``probabilities`` are ``(N, K)`` rows that each sum to 1.

References: Heusel et al. 2017 (FID; the ``pytorch-fid``/TTUR reference code for the
near-singular offset and the imaginary-part check), Bińkowski et al. 2018 (KID: unbiased MMD²
with the cubic polynomial kernel, averaged over subsets), Salimans et al. 2016 (IS over splits),
Kynkäänniemi et al. 2019 (improved precision and recall: k-NN balls around each set's samples),
Naeem et al. 2020 (density and coverage: k-NN balls around the real samples only, robust to
outliers among the generated ones).
"""

import warnings

import numpy as np
from scipy import linalg
from scipy.special import xlogy


class MetricError(ValueError):
    """A metric cannot be computed from these inputs; the message says why."""


def _as_features(features, name="features"):
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise MetricError(f"{name} must be a 2-D (N, D) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise MetricError(f"{name} contain NaN or infinite values")
    return array


def feature_statistics(features):
    """Mean ``(D,)`` and covariance ``(D, D)`` of ``(N, D)`` features, in float64.

    The covariance is the unbiased one (divides by N - 1), as in the reference FID code.
    """
    features = _as_features(features)
    if len(features) < 2:
        raise MetricError(f"need at least 2 feature rows for a covariance, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(
        features.shape[1], features.shape[1]
    )


def check_covariance(sigma, name="sigma", rel_tol=1e-6):
    """Raise MetricError unless ``sigma`` is a finite, symmetric, positive semi-definite matrix.

    Eigenvalues may dip below zero by ``rel_tol`` times the mean eigenvalue (float64 rounding).
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise MetricError(f"{name} must be a square matrix, got shape {sigma.shape}")
    if not np.isfinite(sigma).all():
        raise MetricError(f"{name} contains NaN or infinite values")
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if not np.allclose(sigma, sigma.T, rtol=0, atol=1e-9 * scale):
        raise MetricError(f"{name} is not symmetric, so it is not a covariance matrix")
    # Cholesky of sigma + jitter succeeds iff no eigenvalue is below -jitter: a cheap test
    # (a full eigendecomposition of a 2048x2048 matrix costs seconds) run before sqrtm.
    jitter = rel_tol * max(float(np.trace(sigma)) / len(sigma), np.finfo(np.float64).tiny)
    try:
        linalg.cholesky(sigma + jitter * np.eye(len(sigma)), lower=True)
    except linalg.LinAlgError:
        eigenvalues = linalg.eigvalsh(sigma)
        raise MetricError(
            f"{name} is not positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g}, "
            f"largest {eigenvalues[-1]:.3g}), so it is not a covariance matrix"
        ) from None
    return sigma


def real_sqrtm(matrix, imag_tol=1e-3):
    """Principal square root of ``matrix`` as a real array.

    scipy returns a complex result when rounding puts eigenvalues slightly off the positive real
    axis; tiny imaginary parts (at most ``imag_tol`` on the diagonal, the reference check) are
    dropped. A larger one means the matrix has no real square root (e.g. a product of matrices
    that are not covariances) and raises MetricError.
    """
    root, _ = _sqrtm(matrix)
    return _drop_imaginary(root, imag_tol)


def _sqrtm(matrix):
    """``(root, singular)``: scipy's sqrtm and whether it warned that the matrix is singular."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        root = linalg.sqrtm(matrix)
    singular = any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)
    return root, singular


def _drop_imaginary(root, imag_tol):
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=imag_tol):
            largest = float(np.abs(root.imag).max())
            raise MetricError(
                f"matrix square root has an imaginary component of {largest:.3g} "
                f"(tolerance {imag_tol:g}): the covariances are not valid or far too few "
                "samples were used"
            )
        root = root.real
    return root


_NEGATIVE_TOL = 1e-6


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6, imag_tol=1e-3):
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)``, computed in float64.
    When the product is singular (fewer samples than dimensions, constant features) or the
    result is not finite or clearly negative, the reference implementation's ``eps * I`` is
    added to both covariances. Tiny negatives from rounding are clipped to 0; a negative beyond
    1e-6 of ``||mu1 - mu2||² + Tr(sigma1) + Tr(sigma2)`` after the offset raises MetricError.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise MetricError(f"means must be vectors of one length, got {mu1.shape} and {mu2.shape}")
    sigma1 = check_covariance(np.atleast_2d(sigma1), "sigma1")
    sigma2 = check_covariance(np.atleast_2d(sigma2), "sigma2")
    if sigma1.shape != (len(mu1), len(mu1)) or sigma2.shape != sigma1.shape:
        raise MetricError(
            f"covariance shapes {sigma1.shape} and {sigma2.shape} do not match means {mu1.shape}"
        )
    diff = mu1 - mu2
    # Sample covariances from fewer rows than dimensions are singular: go straight to the
    # offset rather than pay for a square root of a 2048x2048 matrix twice.
    singular = not (_positive_definite(sigma1) and _positive_definite(sigma2))
    distance = None
    if not singular:
        distance, singular = _frechet(diff, sigma1, sigma2, imag_tol)
    scale = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2))
    if singular or distance is None or distance < -_NEGATIVE_TOL * scale:
        # Offsetting both covariances (and, unlike the reference code, their traces too, so
        # the result cannot drift below zero by up to 2·D·eps) makes the product invertible.
        offset = np.eye(len(mu1)) * eps
        distance, _ = _frechet(diff, sigma1 + offset, sigma2 + offset, imag_tol)
        if distance is None or distance < -_NEGATIVE_TOL * scale:
            raise MetricError(
                f"Fréchet distance could not be computed reliably (got {distance}): "
                "the covariance product is too ill-conditioned"
            )
    return max(distance, 0.0)


def _positive_definite(sigma):
    try:
        linalg.cholesky(sigma, lower=True)
    except linalg.LinAlgError:
        return False
    return True


def _frechet(diff, sigma1, sigma2, imag_tol):
    """``(distance or None when sqrtm is not finite, sqrtm warned of singularity)``."""
    covmean, singular = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        return None, True
    covmean = _drop_imaginary(covmean, imag_tol)
    trace = np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(diff @ diff + trace), singular


def fid_from_features(features1, features2, eps=1e-6, imag_tol=1e-3):
    """FID between two ``(N, D)`` feature sets (N may differ; D must match)."""
    features1 = _as_features(features1, "features1")
    features2 = _as_features(features2, "features2")
    if features1.shape[1] != features2.shape[1]:
        raise MetricError(
            f"feature dimensions differ: {features1.shape[1]} and {features2.shape[1]}"
        )
    mu1, sigma1 = feature_statistics(features1)
    mu2, sigma2 = feature_statistics(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps, imag_tol=imag_tol)


def polynomial_kernel(x, y):
    """KID's kernel ``k(x, y) = (x·y / d + 1)³`` for rows of ``x (n, d)`` and ``y (m, d)``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    """Unbiased MMD² estimate between samples ``x (m, d)`` and ``y (n, d)`` (polynomial kernel).

    Within-set sums leave out the diagonal (i == j); the cross term uses all pairs, which is
    already unbiased because x and y are independent. Can be negative for similar sets.
    """
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kernel_inception_distance(features1, features2, num_subsets=100, subset_size=1000, seed=0):
    """KID as ``(mean, std)`` of unbiased MMD² over ``num_subsets`` random subsets.

    Each subset draws ``min(subset_size, min(N1, N2) // 2)`` rows (at least 2) from each set
    without replacement (the reference recipe, capped at half so subsets differ). ``std`` is
    the spread of the subset estimates, not a standard error of the mean (subsets overlap, so
    the mean is no better than ``std / sqrt(num_subsets)``). Deterministic for a ``seed``.
    """
    features1 = _as_features(features1, "features1")
    features2 = _as_features(features2, "features2")
    if features1.shape[1] != features2.shape[1]:
        raise MetricError(
            f"feature dimensions differ: {features1.shape[1]} and {features2.shape[1]}"
        )
    # Subsets of at most half the smaller set: subsets covering a whole set would all be the
    # same, and their spread (std) would read 0 whatever the noise. The mean stays unbiased.
    size = min(subset_size, max(2, min(len(features1), len(features2)) // 2))
    if size < 2:
        raise MetricError(f"KID needs at least 2 rows in each set, got subsets of {size}")
    if num_subsets < 1:
        raise MetricError("num_subsets must be at least 1")
    rng = np.random.default_rng(seed)
    estimates = [
        mmd2_unbiased(
            features1[rng.choice(len(features1), size, replace=False)],
            features2[rng.choice(len(features2), size, replace=False)],
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(probabilities, splits=10):
    """Inception Score ``(mean, std)`` over ``splits`` consecutive chunks of ``(N, K)`` rows.

    Per chunk: ``exp(mean_i KL(p(y|x_i) || p(y)))`` with ``p(y)`` the chunk's mean prediction.
    Bounds: 1 when every image gets the same prediction; K when predictions are confident
    (one-hot) and spread evenly over K classes within each chunk. ``splits`` is lowered to N
    when there are fewer rows.
    """
    probs = _as_features(probabilities, "probabilities")
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise MetricError("probabilities must be non-negative rows that sum to 1")
    splits = max(1, min(splits, len(probs)))
    scores = []
    for chunk in np.array_split(probs, splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        # xlogy makes 0·log(0) = 0, so one-hot rows are exact.
        kl = (
            xlogy(chunk, chunk).sum(axis=1)
            - xlogy(chunk, np.broadcast_to(marginal, chunk.shape)).sum(axis=1)
        ).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def total_variation(p, q):
    """Total-variation distance ``½ Σ |p - q|`` between two distributions over the same keys.

    ``p`` and ``q`` are dicts {outcome: probability}; missing outcomes count as 0. Range [0, 1].
    """
    keys = set(p) | set(q)
    return 0.5 * float(sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys))


# --- Fidelity and diversity in a feature space (Kynkäänniemi 2019, Naeem 2020) ---------------
_DISTANCE_CHUNK = 1024  # rows per block: a 10k x 10k distance matrix never sits in memory


def _squared_distances(x, y):
    """``(len(x), len(y))`` squared Euclidean distances, clipped at 0 against rounding."""
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d, 0.0)


def _kth_neighbour_radii(features, k):
    """Squared distance from each row to its k-th nearest other row (itself excluded)."""
    radii = np.empty(len(features))
    for start in range(0, len(features), _DISTANCE_CHUNK):
        block = _squared_distances(features[start : start + _DISTANCE_CHUNK], features)
        # Column k of the sorted row: column 0 is the row itself (distance 0).
        radii[start : start + len(block)] = np.partition(block, k, axis=1)[:, k]
    return radii


def _ball_counts(queries, centres, radii):
    """For each query row, how many centres' balls (squared radius ``radii``) contain it."""
    counts = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), _DISTANCE_CHUNK):
        block = _squared_distances(queries[start : start + _DISTANCE_CHUNK], centres)
        counts[start : start + len(block)] = (block <= radii[None, :]).sum(1)
    return counts


def precision_recall_density_coverage(real_features, fake_features, k=5):
    """Fidelity and diversity of ``fake_features`` against ``real_features`` as a dict.

    - ``precision``: share of fakes inside some real sample's k-NN ball (do fakes look real?);
    - ``recall``: share of reals inside some fake sample's k-NN ball (is the variety covered?);
    - ``density``: mean count of real balls holding each fake, over k (about 1 for a perfect
      generator; above 1 when fakes crowd the dense modes);
    - ``coverage``: share of real balls that hold at least one fake.
    Each set needs more than ``k`` rows.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise MetricError(f"feature dimensions differ: {real.shape[1]} and {fake.shape[1]}")
    if k < 1 or min(len(real), len(fake)) <= k:
        raise MetricError(
            f"precision/recall with k={k} needs more than {k} rows in each set, "
            f"got {len(real)} real and {len(fake)} generated"
        )
    real_radii = _kth_neighbour_radii(real, k)
    fake_radii = _kth_neighbour_radii(fake, k)
    fakes_in_real_balls = _ball_counts(fake, real, real_radii)
    reals_in_fake_balls = _ball_counts(real, fake, fake_radii)
    covered = np.zeros(len(real), dtype=bool)
    for start in range(0, len(real), _DISTANCE_CHUNK):
        block = _squared_distances(real[start : start + _DISTANCE_CHUNK], fake)
        nearest_fake = block.min(axis=1)
        covered[start : start + len(block)] = nearest_fake <= real_radii[start : start + len(block)]
    return {
        "precision": float((fakes_in_real_balls > 0).mean()),
        "recall": float((reals_in_fake_balls > 0).mean()),
        "density": float(fakes_in_real_balls.sum() / (k * len(fake))),
        "coverage": float(covered.mean()),
    }


def mean_pairwise_distance(features):
    """Mean Euclidean distance over all distinct pairs of rows: how spread out a sample is."""
    x = _as_features(features)
    if len(x) < 2:
        raise MetricError("mean pairwise distance needs at least 2 rows")
    total = 0.0
    for start in range(0, len(x), _DISTANCE_CHUNK):
        total += np.sqrt(_squared_distances(x[start : start + _DISTANCE_CHUNK], x)).sum()
    return float(total / (len(x) * (len(x) - 1)))


def diversity_ratio(features_by_condition, unconditional_features):
    """Mean within-condition pairwise distance over the unconditional one.

    ``features_by_condition``: one ``(n, D)`` array per fixed trait combination (seeds vary
    within it). 1.0 means fixing the traits leaves as much variety as drawing freely; near 0
    means every seed gives the same image for those traits.
    """
    within = [mean_pairwise_distance(group) for group in features_by_condition]
    if not within:
        raise MetricError("diversity needs at least one condition")
    baseline = mean_pairwise_distance(unconditional_features)
    if baseline <= 0:
        raise MetricError("the unconditional sample has no spread (all rows equal)")
    return float(np.mean(within) / baseline)


# --- Per-image validity ------------------------------------------------------------------------
def valid_token_rate(probabilities_by_type, threshold=0.9):
    """Share of images labelled with confidence >= ``threshold`` for EVERY trait type.

    ``probabilities_by_type``: {trait_type: (N, classes) class probabilities (the top one
    counts) or (N,) confidences (``TraitClassifier.type_confidences``)}. An image the
    classifier cannot read for one type is not a valid token.
    """
    if not probabilities_by_type:
        raise MetricError("valid-token rate needs at least one trait type")
    if not 0 < threshold <= 1:
        raise MetricError(f"threshold must be in (0, 1], got {threshold!r}")
    confident = None
    for trait_type, probabilities in probabilities_by_type.items():
        probs = np.asarray(probabilities, dtype=np.float64)
        probs = _as_features(probs[:, None] if probs.ndim == 1 else probs, repr(trait_type))
        sure = probs.max(axis=1) >= threshold
        if confident is not None and len(sure) != len(confident):
            raise MetricError("every trait type needs one row per image")
        confident = sure if confident is None else confident & sure
    return float(confident.mean()) if len(confident) else 0.0


def _rgb_pixels(images):
    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] not in (3, 4):
        raise MetricError(f"images must be uint8 (N, H, W, 3|4), got {array.dtype} {array.shape}")
    if array.shape[-1] == 4:
        # Fully transparent pixels carry no colour a viewer sees; count them as the one
        # colour "transparent" (0, 0, 0) so they never break palette conformity.
        array = np.where(array[..., 3:] == 0, 0, array)[..., :3]
    return array.reshape(-1, 3)


def _pack(rgb):
    rgb = rgb.astype(np.uint32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def collection_palette(images, max_colours=256):
    """The colours a collection draws with, most used first, as uint8 ``(k, 3)``.

    At most ``max_colours``; a collection using more is not a palette collection (the caller
    compares ``len(palette)`` with the number of distinct colours to decide).
    """
    packed = _pack(_rgb_pixels(images))
    values, counts = np.unique(packed, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:max_colours]
    chosen = values[order]
    return np.stack([(chosen >> 16) & 255, (chosen >> 8) & 255, chosen & 255], axis=1).astype(
        np.uint8
    )


def palette_conformity(images, palette):
    """Share of pixels whose RGB colour is exactly one of ``palette``'s (k, 3) colours."""
    pixels = _pack(_rgb_pixels(images))
    allowed = _pack(np.asarray(palette, dtype=np.uint8).reshape(-1, 3))
    if not len(pixels):
        raise MetricError("no pixels to check")
    return float(np.isin(pixels, allowed).mean())
