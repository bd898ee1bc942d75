"""Training the default extractive reader: SQuAD-2 data, features, the training loop and its report."""
