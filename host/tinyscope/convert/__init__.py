"""Stage 1: a Keras model in; int8 TFLite, C arrays, test inputs and manifest.json out."""
