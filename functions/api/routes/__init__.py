"""The API's routes: a powertools router per resource, each built from the logic it calls (app.py
includes them, a container's own logic in each, in the order their routes are matched)."""
