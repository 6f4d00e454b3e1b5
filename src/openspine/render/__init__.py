"""Pictures and documents made from a result: overlay PNG, self-contained HTML report, label map."""
