"""Figures of sweeps: the shared HoloViews machinery (``base``), the figure kinds (``kinds``: names
only, so the CLI's --help imports no plotting library; ``figures``: the functions), self-contained
HTML pages (``html_page``), the report (``report``), the Panel explorer (``explore``) and the
calibration figure (``validation``). Display units come from ``sweep.query.units``."""
