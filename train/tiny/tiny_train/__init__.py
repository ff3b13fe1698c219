"""The parts of ``train.py`` that the trainers share: encoding, vocabulary, augmentation."""
