"""Task results for people: terminal text, Markdown, and one self-contained HTML page.

- ``sections``: the one reading of a result into sections of paragraphs, lists and tables;
- ``markdown``, ``html``: render it (the page adds the ``charts``, plotly figures);
- ``format``: how a number, a share or a time is written;
- ``text``: the one-screen summary a terminal shows first.
"""
