"""One call that evaluates a generator's images against its collection, with a baseline.

Every figure for generated images is paired with the same figure for real images of the same
collection (``baseline``), so "FID 12.3" always comes with what real-vs-real looks like.

How the sets are compared (all deterministic for a given ``seed``):
- The real images are shuffled and split in two halves: ``reference`` (A) and ``held`` (B).
- Distribution figures (FID, KID, IS, trait TV) compare the generated images with A, and the
  baseline compares B with A. Both sides use the same number of images (generated images are
  subsampled to |B|), because FID and TV estimates depend on sample size.
- Memorisation compares every generated image with *all* real images (the training set); the
  baseline is each real image's distance to its nearest *other* real image (leave-one-out).
  A pixel near-copy is within the threshold of that image *and* read by the classifier as the
  same traits (``memorisation``: a new combination a few cells from a token is a new token).
  Domain near-copies are distances alone.
- Domain features (the trait classifier's penultimate layer) are divided by the real
  features' root-mean-square before FID/KID/nearest neighbours.
- Trait distributions are read by the trait classifier on both sides (the same instrument), so
  its own errors cancel; ``classifier.label_tv_per_type`` shows how far its reading of the real
  images is from their true labels.

Pass the real images *as the generator saw them* (its training images at its resolution):
pixel near-copies are measured at that size, and a generator trained on resampled images
reproduces the resampled pixels, not the originals.

Report (``REPORT_VERSION`` 1; every value a JSON number, string, list or object)::

    version, counts {real, generated, reference, compared},
    inception  {fid, kid_mean, kid_std, is_mean, is_std, input_size} | {unavailable: why},
    domain     {fid, kid_mean, kid_std, precision, recall, density, coverage},
    quality    {valid_token_rate, palette_conformity (pixel art)},
    traits     {tv_per_type {type: tv}, tv_mean, tv_count_per_type {multi type: tv},
                real_distribution, generated_distribution {type: {value: share}}},
    memorisation {pixel | domain: {nn_mean, nn_median, nn_min, nn_median_relative,
                                   threshold, near_copy_count, near_copy_share}},
    baseline   {quality, inception, domain, traits (without the distributions), memorisation},
    classifier {train_count, heldout_count, per_type_accuracy, exact_match, label_accuracy,
                majority_per_type_accuracy, train_per_type_accuracy, per_trait,
                label_tv_per_type},
    settings   {kid_subsets, kid_subset_size, is_splits, threshold_fraction, seed},
    warnings   [sentences]
"""

import numpy as np

from gan_app.gan import metrics
from gan_app.gan.features import (
    POOL_FEATURES,
    InceptionFeatures,
    InceptionWeightsError,
    check_images,
)
from gan_app.gan.memorisation import (
    DEFAULT_THRESHOLD_FRACTION,
    NearCopyIndex,
    NearestNeighbours,
    calibrated_threshold,
    distance_summary,
    real_neighbours,
    real_nn_distances,
)
from gan_app.gan.trait_classifier import (
    count_distributions,
    trait_distributions,
    traits_fingerprint,
)

REPORT_VERSION = 1
PRD_NEIGHBOURS = 5  # k of precision/recall/density/coverage (Naeem et al.'s default)
VALID_CONFIDENCE = 0.9  # a valid token is read with this confidence for every trait type


def evaluate_generator(
    real_images,
    real_traits,
    generated_images,
    classifier,
    *,
    inception_weights=None,
    inception=None,
    near_copy_index=None,
    kid_subsets=100,
    kid_subset_size=1000,
    is_splits=10,
    threshold_fraction=DEFAULT_THRESHOLD_FRACTION,
    seed=0,
    progress=None,
    palette=None,
):
    """The report described in the module docstring (JSON-serialisable as it is).

    ``real_images``/``generated_images``: uint8 ``(N, H, W, 3)``; sizes may differ (each
    extractor resizes). ``real_traits``: one trait set per real image (any form
    ``trait_classifier.normalize_traits`` takes). ``classifier``: a fitted or loaded
    ``TraitClassifier``. Inception figures use ``inception`` (an ``InceptionFeatures``) or the
    weights file ``inception_weights``; with neither, or a bad file, ``inception`` is
    ``{"unavailable": "<why>"}`` and everything else is still computed. ``near_copy_index``:
    a ``NearCopyIndex`` already fitted on ``real_images`` (fitted here when omitted).
    ``progress(stage)`` is called before each stage. ``palette``: a pixel-art collection's
    colours (uint8 (k, 3)); adds palette conformity to ``quality``.
    """
    step = progress or (lambda stage: None)
    real = check_images(real_images, "real images")
    generated = check_images(generated_images, "generated images")
    real_traits = list(real_traits)
    if len(real_traits) != len(real):
        raise ValueError(f"{len(real)} real images but {len(real_traits)} trait sets")
    if len(real) < 4 or len(generated) < 2:
        raise ValueError(
            f"need at least 4 real and 2 generated images, got {len(real)} and {len(generated)}"
        )
    order = np.random.default_rng(seed).permutation(len(real))
    reference, held = order[: (len(real) + 1) // 2], order[(len(real) + 1) // 2 :]
    compared = _subsample(len(generated), len(held), seed)
    warnings = []
    if classifier.fingerprint and classifier.fingerprint != traits_fingerprint(real_traits):
        warnings.append("the trait classifier was trained on a different set of real images")
    if len(compared) < len(held):
        warnings.append(
            f"only {len(compared)} generated images for {len(held)} held-out real ones: "
            "distribution figures are noisier than the baseline's"
        )
    kid = {"num_subsets": kid_subsets, "subset_size": kid_subset_size, "seed": seed}

    step("inception")
    inception_report, inception_warnings = _inception_figures(
        inception,
        inception_weights,
        real[reference],
        real[held],
        generated[compared],
        kid,
        is_splits,
    )

    warnings.extend(inception_warnings)

    step("domain features")
    real_features, real_predicted = classifier.features_and_traits(real)
    gen_features, gen_predicted = classifier.features_and_traits(generated)
    # KID's kernel (x·y/d + 1)³ is not scale-free: put the features in units of the real
    # features' root-mean-square so domain figures read alike across collections.
    scale = float(np.sqrt(np.mean(real_features**2))) or 1.0
    real_features, gen_features = real_features / scale, gen_features / scale
    domain = _distance_figures(real_features[reference], gen_features[compared], kid)
    domain_baseline = _distance_figures(real_features[reference], real_features[held], kid)

    step("traits")
    vocabulary = classifier.vocabulary
    reference_traits = [real_predicted[i] for i in reference]
    traits = _trait_figures(vocabulary, reference_traits, [gen_predicted[i] for i in compared])
    traits_baseline = _trait_figures(
        vocabulary, reference_traits, [real_predicted[i] for i in held]
    )
    label_tv = _tv_per_type(
        trait_distributions(vocabulary, vocabulary.value_sets(real_traits)),
        trait_distributions(vocabulary, real_predicted),
    )

    step("quality")
    quality, quality_baseline = _quality_figures(
        classifier, real[held], generated[compared], palette
    )

    step("memorisation")
    index = near_copy_index or NearCopyIndex.fit(real, fraction=threshold_fraction, seed=seed)
    memorisation, memorisation_baseline = _memorisation_figures(
        index,
        generated,
        real_features,
        gen_features,
        threshold_fraction,
        seed,
        classifier.read_values,
    )
    return _plain(
        {
            "version": REPORT_VERSION,
            "counts": {
                "real": len(real),
                "generated": len(generated),
                "reference": len(reference),
                "compared": len(compared),
            },
            "inception": inception_report["generated"],
            "domain": domain,
            "traits": traits,
            "memorisation": memorisation,
            "quality": quality,
            "baseline": {
                "quality": quality_baseline,
                "inception": inception_report["baseline"],
                "domain": domain_baseline,
                "traits": {k: v for k, v in traits_baseline.items() if "distribution" not in k},
                "memorisation": memorisation_baseline,
            },
            "classifier": {
                **{k: v for k, v in classifier.metrics.items() if k != "per_trait"},
                "per_trait": classifier.metrics.get("per_trait", {}),
                "label_tv_per_type": label_tv,
            },
            "settings": {
                "kid_subsets": kid_subsets,
                "kid_subset_size": kid_subset_size,
                "is_splits": is_splits,
                "threshold_fraction": threshold_fraction,
                "seed": seed,
            },
            "warnings": warnings,
        }
    )


def _subsample(count, wanted, seed):
    if count <= wanted:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed + 1).choice(count, wanted, replace=False))


def _distance_figures(reference_features, other_features, kid):
    kid_mean, kid_std = metrics.kernel_inception_distance(
        reference_features, other_features, kid["num_subsets"], kid["subset_size"], kid["seed"]
    )
    figures = {
        "fid": metrics.fid_from_features(reference_features, other_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
    }
    if min(len(reference_features), len(other_features)) > PRD_NEIGHBOURS:
        figures.update(
            metrics.precision_recall_density_coverage(
                reference_features, other_features, k=PRD_NEIGHBOURS
            )
        )
    return figures


def _quality_figures(classifier, real, generated, palette):
    """Valid-token rate (and palette conformity) of the generated images and of real ones."""

    def figures(images):
        confidences = classifier.type_confidences(images)
        result = {"valid_token_rate": metrics.valid_token_rate(confidences, VALID_CONFIDENCE)}
        if palette is not None:
            result["palette_conformity"] = metrics.palette_conformity(images, palette)
        return result

    return figures(generated), figures(real)


def _inception_figures(extractor, weights_path, reference, held, generated, kid, is_splits):
    try:
        extractor = extractor or InceptionFeatures.from_weights_file(weights_path)
    except InceptionWeightsError as error:
        unavailable = {"unavailable": str(error)}
        return {"generated": unavailable, "baseline": unavailable}, []
    warnings = []
    if min(len(reference), len(held)) <= POOL_FEATURES:
        warnings.append(
            f"Inception FID/KID from {min(len(reference), len(held))} images per side (under "
            f"{POOL_FEATURES + 1}): the covariances are rank-deficient, so compare these FIDs "
            "with the baseline and each other, not with published values"
        )
    reference_pool, _ = extractor.pool_and_probabilities(reference)
    result = {}
    for name, images in (("generated", generated), ("baseline", held)):
        pool, probabilities = extractor.pool_and_probabilities(images)
        is_mean, is_std = metrics.inception_score(probabilities, is_splits)
        result[name] = {
            **_distance_figures(reference_pool, pool, kid),
            "is_mean": is_mean,
            "is_std": is_std,
            "input_size": extractor.input_size,
        }
    return result, warnings


def _tv_per_type(first, second):
    return {name: metrics.total_variation(first[name], second[name]) for name in first}


def _trait_figures(vocabulary, reference_sets, other_sets):
    reference = trait_distributions(vocabulary, reference_sets)
    other = trait_distributions(vocabulary, other_sets)
    per_type = _tv_per_type(reference, other)
    counts = _tv_per_type(
        count_distributions(vocabulary, reference_sets), count_distributions(vocabulary, other_sets)
    )
    return {
        "tv_per_type": per_type,
        "tv_mean": float(np.mean(list(per_type.values()))),
        "tv_count_per_type": counts,
        "real_distribution": reference,
        "generated_distribution": other,
    }


def _memorisation_figures(index, generated, real_features, gen_features, fraction, seed, read):
    """Pixel near-copies follow ``NearCopyIndex.check``'s rule with the classifier as the
    reader (a close image is a copy when it reads as the same traits), for the generated
    images and, as the baseline, for each indexed real image against its nearest other one."""
    pixel_distances, nearest = index.nearest(generated)
    pixel_flags = index.same_reading(generated, nearest, pixel_distances <= index.threshold, read)
    vectors = index.neighbours.vectors
    rows, pixel_real, real_nearest = real_neighbours(index.neighbours, len(vectors), seed)
    pixel_real = pixel_real / np.sqrt(vectors.shape[1])  # RMS, like ``index.nearest``
    real_flags = index.same_reading(
        index.images[rows], real_nearest, pixel_real <= index.threshold, read
    )
    features = NearestNeighbours(real_features)
    feature_real = real_nn_distances(features, sample=len(real_features), seed=seed)
    feature_threshold, feature_median = calibrated_threshold(feature_real, fraction)
    feature_distances = np.sqrt(features.query(gen_features)[0])
    generated_figures = {
        "pixel": distance_summary(
            pixel_distances, index.threshold, index.real_nn_median, pixel_flags
        ),
        "domain": distance_summary(feature_distances, feature_threshold, feature_median),
    }
    baseline = {
        "pixel": distance_summary(pixel_real, index.threshold, index.real_nn_median, real_flags),
        "domain": distance_summary(feature_real, feature_threshold, feature_median),
    }
    return generated_figures, baseline


def _plain(value):
    """numpy scalars/arrays → Python types, so the report goes straight into a JSONField."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def select_best_checkpoint(reports, max_near_copy_share=0.05, fid_tolerance=0.02):
    """Recommend an epoch from ``[(epoch, report), ...]``; returns
    ``{"epoch", "reason", "ranking"}`` or None when no report has a domain FID.

    Rule: leave out checkpoints whose generated images include more than
    ``max_near_copy_share`` pixel near-copies (unless all do); among the rest, the lowest
    domain FID wins; checkpoints within ``fid_tolerance`` (relative) of it count as tied and
    the lowest mean trait TV among them wins, then the later epoch.
    """
    scored = [
        (epoch, report)
        for epoch, report in reports
        if isinstance(report.get("domain", {}).get("fid"), int | float)
    ]
    if not scored:
        return None
    eligible = [(e, r) for e, r in scored if _near_copy_share(r) <= max_near_copy_share]
    filtered = bool(eligible)
    eligible = eligible or scored
    tied_below = min(r["domain"]["fid"] for _, r in eligible) * (1 + fid_tolerance)

    def rank(item):
        epoch, report = item
        fid = report["domain"]["fid"]
        # Tied checkpoints share the key 0 and are ordered by trait TV, then later epoch.
        return (fid if fid > tied_below else 0.0, _tv_mean(report), -epoch)

    ranking = sorted(eligible, key=rank)
    epoch, report = ranking[0]
    reason = (
        f"lowest domain FID ({report['domain']['fid']:.4g}, ties within "
        f"{fid_tolerance:.0%} broken by trait TV {_tv_mean(report):.3g})"
    )
    if not filtered:
        reason += f"; every checkpoint had over {max_near_copy_share:.0%} near-copies"
    elif len(eligible) < len(scored):
        reason += f"; {len(scored) - len(eligible)} checkpoint(s) left out for near-copies"
    return {"epoch": epoch, "reason": reason, "ranking": [e for e, _ in ranking]}


def _near_copy_share(report):
    return report.get("memorisation", {}).get("pixel", {}).get("near_copy_share", 0.0)


def _tv_mean(report):
    return report.get("traits", {}).get("tv_mean", float("inf"))
