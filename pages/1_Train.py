"""Train: pick hyperparameters, click Train, watch the losses and accuracy live; pause or
stop any time. The page is fmnist_app.train_view (live view) and fmnist_app.train_form."""

import torch  # noqa: F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app.train_view import main

main()
