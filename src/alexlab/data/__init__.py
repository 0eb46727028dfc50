"""LightningDataModules: batches of images for the networks, with the paper's preprocessing."""
