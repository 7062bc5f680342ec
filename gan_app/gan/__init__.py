"""Pure ML code (Keras 3 on TensorFlow) for Non-Fungible Fakes. Never imports Django.

Train::

    images = prepare_images(sources, config, cache_dir=...)
    trainer = Trainer(config, images)              # or Trainer.resume(checkpoint, images)
    trainer.run(max_seconds=240, should_stop=..., on_epoch=..., on_checkpoint=...)

Serve::

    generator = load_generator(artifact)           # needs none of the training code
    pixels = generator.generate([seed])            # uint8 (1, R, R, 3)
    png = to_png(pixels[0])

Trait-conditioned (``GANConfig(conditional=True)``)::

    trainer = Trainer(config, images, traits=trait_sets)   # one trait set per image
    generator.generate([seed], traits={"eyes": "Laser"})   # other types: "any"
"""

from .conditioning import (
    ConditionError,
    ConditionVocabulary,
    ResolvedConditions,
    trait_hit_rate,
)
from .config import ConfigError, GANConfig
from .data import (
    EmptyTrainingSet,
    ImageSet,
    MixedImageSizes,
    TrainingDataError,
    TrainingSetTooSmall,
    UnreadableImages,
    prepare_images,
)
from .gan import DCGAN, ConditionalDCGAN, build_dcgan
from .models import (
    build_conditional_discriminator,
    build_conditional_generator,
    build_discriminator,
    build_generator,
)
from .runtime import Runtime, pin_numerics, resolve_runtime
from .sampling import (
    GRID_SEEDS,
    GeneratorArtifactError,
    LoadedGenerator,
    export_generator,
    latent_vectors,
    load_generator,
    make_grid,
    slerp,
    to_png,
)
from .training import (
    CheckpointData,
    CheckpointError,
    ChunkResult,
    DirectorySink,
    EpochProgress,
    Trainer,
    TrainingDiverged,
    TrainingError,
    checkpoint_grid,
    export_checkpoint_generator,
    generator_from_checkpoint,
    read_checkpoint,
)

# Every process that imports this package runs its graphs with the same rewrites, set before
# any of them runs: a seed's image must not depend on what else the process did (runtime).
pin_numerics()

__all__ = [
    "DCGAN",
    "GRID_SEEDS",
    "CheckpointData",
    "CheckpointError",
    "ChunkResult",
    "ConditionError",
    "ConditionVocabulary",
    "ConditionalDCGAN",
    "ConfigError",
    "DirectorySink",
    "EmptyTrainingSet",
    "EpochProgress",
    "GANConfig",
    "GeneratorArtifactError",
    "ImageSet",
    "LoadedGenerator",
    "MixedImageSizes",
    "ResolvedConditions",
    "Runtime",
    "Trainer",
    "TrainingDataError",
    "TrainingDiverged",
    "TrainingError",
    "TrainingSetTooSmall",
    "UnreadableImages",
    "build_conditional_discriminator",
    "build_conditional_generator",
    "build_dcgan",
    "build_discriminator",
    "build_generator",
    "checkpoint_grid",
    "export_checkpoint_generator",
    "export_generator",
    "generator_from_checkpoint",
    "latent_vectors",
    "load_generator",
    "make_grid",
    "prepare_images",
    "read_checkpoint",
    "resolve_runtime",
    "slerp",
    "to_png",
    "trait_hit_rate",
]
