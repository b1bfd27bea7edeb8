"""Stage 4: pictures and pages: figures, the HTML report, each command's output files."""
