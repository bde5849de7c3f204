"""Monthly aggregates: the cubes openIMIS publishes, each record's contribution to their cells."""
