"""Reports: tables (Markdown) and figures (PNG) from finished runs, beside the paper's numbers.
Reports read run directories; they never train."""
