"""Text perturbations: character and word edits, seeded corruption families, adversarial search."""
