"""党员登记 (registration drive): drives, applications, reviews."""
