"""The real on-disk formats: Shopping100k's layout, ADDE's split files, the stored paper split."""
