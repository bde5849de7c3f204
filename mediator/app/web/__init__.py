"""The Flask layer: thin views that wire receive → validate → map → deliver → answer together."""
