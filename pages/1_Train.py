"""Train: pick hyperparameters, click Train, watch the losses and accuracy live; pause or
stop any time. The page is fmnist_app.train_view (live view) and fmnist_app.train_form."""

from fmnist_app.shell import page_head

# First, before torch and this page's modules load: a fresh tab shows the title at once.
page_head("Train", ":material/model_training: Train")

import torch  # noqa: E402, F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app.train_view import main  # noqa: E402

main()
