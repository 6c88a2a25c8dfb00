"""The chest X-ray task's domain words (CheXpert findings); the task itself is not registered yet."""
