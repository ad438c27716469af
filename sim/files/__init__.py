"""pmsim's own files: YAML read with line numbers for errors, rule files, run folders staged and
renamed into place. Used by every other part of ``sim``."""
