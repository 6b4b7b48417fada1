"""aiohttp admin UI, operator workspace and REST API.

How a feature module plugs in (``def setup_routes(app: web.Application) -> None``):

* ``auth.route(app, method, path, handler, *, roles, api=False, name=None, summary=None,
  request_schema=None, response_schema=None, query=())`` registers a handler with the roles
  that may call it (``auth.ALL_ROLES``, ``auth.STAFF`` = admin + supervisor, ``auth.ADMIN``).
  The route table ``app[auth.ROUTE_TABLE]`` feeds the OpenAPI document and the role-walk test;
  a GET page with ``name`` shows in the main menu when :data:`layout.MENU` names it
  ("projects", "reports", "monitoring" are reserved for those pages).
* ``request[auth.USER]`` is the signed-in :class:`~sipspeak.storage.models.User`;
  ``auth.current_user(request)`` returns it typed; ``await auth.visible_project_ids(request)``
  is the caller's project scope (None = all).
* ``layout.render(request, template, context, status=200)`` renders a template that extends
  ``base.html`` (or ``layout.html``, the same layout; blocks ``page_title``, ``content``,
  ``info``, ``scripts``); templates get ``_("key")``, ``csrf_input()``, ``csrf_token``,
  ``user``, ``error`` / ``notice`` and the header.  Strings live in :mod:`sipspeak.i18n`
  (``i18n.extend`` adds a module's strings).  Scripts read the CSRF token from
  ``<meta name="csrf-token">`` and send it as ``X-CSRF-Token`` (``window.sipspeak.postJson``).
* ``forms.Fields.read(request)`` reads a form or a JSON object into typed values;
  ``errors.ApiError`` / ``Invalid`` / ``Forbidden`` (or storage ``Conflict`` / ``NotFound``)
  become ``{"error": {"code", "message", "field"}}`` with 400/403/404/409/422 on the API and
  the error page on pages; ``pages.form_post`` re-renders a form on bad input.  Raise them
  with ``i18n.Text("<area>.error.<name>", **values)`` (texts in :mod:`sipspeak.i18n.errors`): the
  answer says it in the reader's language (``pages.error_text`` for a page's own context).
* Services read optionally: ``services.trunk_states`` (trunk id → state, else the last
  ``trunk.state`` bus event is shown) and ``services.file_limits``
  (:class:`filemanager.FileLimits`, defaults 50 MiB per file, 5 GiB in all).
"""
