"""The study's DenseNet121 recipe as an ImageModelSpec."""

from report2label.core.image_model import Augmentation, ImageModelSpec, Optimisation, Preprocessing

RECIPE = ImageModelSpec(
    architecture="densenet121",
    in_chans=1,
    image_size=640,
    outputs="binary",
    preprocessing=Preprocessing(
        intensity="minmax", foreground_range=(0.3, 0.7), rotate_degrees=0, interpolation="area"
    ),
    augmentation=Augmentation(crop_fraction=0.9, rotate_degrees=15, rotate_p=0.8, hflip_p=0.5, zoom=(1.0, 1.3)),
    loss="bce_pos_weight",
    optimisation=Optimisation(optimizer="adamw", lr=1e-5, schedule="onecycle", max_lr=5e-3),
    batch_size=32,
    epochs=200,
    select_metric="mcc",
    threshold=0.5,
    balance_eval_splits=True,
)
