"""Care automation (R-G5) and the differentiated measures by grade (R-G2)."""
