# JupyterHub configuration of the cnnlab hub demo (autograder/hub/demo.py writes DEMO above this).
# The layout follows nbgrader's demos/demo_multiple_classes: the course is a hub service run as its
# own grader account; groups formgrade-<course> (who may open the formgrader) and nbgrader-<course>
# (who takes the course; nbgrader's JupyterHubAuthPlugin reads it).
# ruff: noqa: F821 (DEMO and get_config are provided when JupyterHub runs this file)

c = get_config()

c.JupyterHub.bind_url = DEMO["bind_url"]
c.JupyterHub.hub_ip = DEMO["hub_ip"]
c.JupyterHub.hub_port = DEMO["hub_port"]
c.JupyterHub.db_url = DEMO["db"]
c.JupyterHub.cookie_secret_file = DEMO["cookie"]
c.ConfigurableHTTPProxy.command = DEMO["proxy"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{DEMO['api_port']}"
c.ConfigurableHTTPProxy.should_start = True

# A test authenticator for the demo: any allowed user name with the one shared password.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = DEMO["password"]
c.Authenticator.allowed_users = {DEMO["instructor"], DEMO["grader"], *DEMO["students"]}
c.Authenticator.admin_users = {DEMO["instructor"]}

# The default spawner: a local process per user, run as that user's UNIX account.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [DEMO["singleuser"]]
c.Spawner.default_url = "/lab"
c.Spawner.environment = DEMO["student_env"]
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180

course = DEMO["course"]
c.JupyterHub.load_groups = {
    f"formgrade-{course}": {"users": [DEMO["instructor"], DEMO["grader"]]},
    f"nbgrader-{course}": {"users": [DEMO["instructor"], *DEMO["students"]]},
}
c.JupyterHub.load_roles = [
    # a server's token carries its owner's permissions: nbgrader's assignment list asks the hub for
    # the owner's groups and for the course service
    {"name": "server", "scopes": ["inherit"]},
    {
        "name": f"formgrade-{course}",
        "groups": [f"formgrade-{course}"],
        "scopes": [f"access:services!service={course}"],
    },
    {
        "name": f"nbgrader-{course}",
        "groups": [f"nbgrader-{course}"],
        "scopes": ["list:services", f"read:services!service={course}"],
    },
    # the course service: nbgrader's JupyterHubAuthPlugin reads users' groups (who takes the
    # course) and adds students to nbgrader-<course> when the formgrader adds them
    {
        "name": f"{course}-service",
        "services": [course],
        "scopes": ["list:users", "read:users", "read:groups", "groups"],
    },
    # the demo's driver: makes the scripted accounts' API tokens
    {
        "name": "cnnlab-demo-driver",
        "services": ["cnnlab-demo-driver"],
        "scopes": ["admin:users", "tokens", "read:services"],
    },
]
c.JupyterHub.services = [
    {
        "name": course,
        "url": f"http://127.0.0.1:{DEMO['service_port']}",
        "command": [DEMO["singleuser"], "--ServerApp.root_dir=" + DEMO["grader_home"]],
        "user": DEMO["grader"],
        "cwd": DEMO["grader_home"],
        "environment": DEMO["service_env"],
        "api_token": DEMO["service_token"],
        "oauth_no_confirm": True,
    },
    {"name": "cnnlab-demo-driver", "api_token": DEMO["admin_token"]},
]
