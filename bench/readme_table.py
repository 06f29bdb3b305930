"""Put a Markdown table between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in bench/README.md.

    python bench/readme_table.py NAME TABLE.md      (from the repository root; prints the table)
"""
import pathlib
import sys

name, table_path = sys.argv[1], sys.argv[2]
table = pathlib.Path(table_path).read_text().strip()
readme = pathlib.Path("bench/README.md")
start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
head, rest = readme.read_text().split(start, 1)
readme.write_text(head + start + "\n" + table + "\n" + end + rest.split(end, 1)[1])
print(table)
