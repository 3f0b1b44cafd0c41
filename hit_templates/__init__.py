"""Jinja templates of the worker's page, rendered by `crowdkit.templates`.

`task.html` is the document; it inlines `task.css` and `task.js` and includes
`instructions.html` and `example.html`. A study overrides any of them by putting a file of
the same name in its own folder ([page] templates_dir in study.toml).
"""
