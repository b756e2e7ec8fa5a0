"""Task results for people: terminal text, Markdown, and one self-contained HTML page.

They take a typed ``TaskResult`` (its report decoded once: ``AnalysisReport`` or
``PlanningReport``) and read its attributes; nothing here parses JSON.

- ``sections``: the one reading of a result into a ``document`` of sections (paragraphs,
  lists and tables); ``diagnosis`` (root causes, changes, SLOs, traffic, findings, data
  quality), ``plan`` (roadmap, return, timeline, risk, resources, learning) and
  ``projection`` (capacity) build their sections, ``cells`` the figures they share;
- ``markdown``, ``html``: render it (the page adds the ``charts``, plotly figures);
- ``format``: how a number, a share, a time or a figure's source is written;
- ``text``: the one-screen summary a terminal shows first.
"""
