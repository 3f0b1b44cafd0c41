"""Jinja templates of the worker's page, rendered by `crowdkit.templates`.

`task.html` is the document; it inlines `task.css` and `task.js` and includes
`instructions.html`, `example.html` and `messages.html`. Each trial type adds its own parts
from its package (`<type>/screen.html`, `<type>/explanation.html`, `<type>/example.html`,
`<type>/how_to_answer.html`, `<type>/trial.js`; see crowdkit.trials). A study overrides any
of them by putting a file of the same name (and folder) in its own folder ([page]
templates_dir in study.toml).
"""
