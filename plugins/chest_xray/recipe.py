"""The chest task's recipe: a DenseNet121 with one output per label, as in CheXpert's baselines."""

from report2label.core.image_model import Augmentation, ImageModelSpec, Optimisation, Preprocessing

RECIPE = ImageModelSpec(
    architecture="densenet121",
    in_chans=1,
    image_size=320,
    outputs="multilabel",
    preprocessing=Preprocessing(intensity="minmax", foreground_range=None, interpolation="area"),
    augmentation=Augmentation(crop_fraction=0.9, rotate_degrees=10, rotate_p=0.5, hflip_p=0.0, zoom=(1.0, 1.1)),
    loss="bce_pos_weight",
    optimisation=Optimisation(optimizer="adamw", lr=1e-4, schedule="onecycle", max_lr=1e-3),
    batch_size=16,
    epochs=30,
    select_metric="auc",
    threshold="youden",
    balance_eval_splits=False,
)
