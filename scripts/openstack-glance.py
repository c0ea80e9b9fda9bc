"""Glance's Python client, as another user of the cloud plays it in tests.

Run with Debian's Python (/usr/bin/python3): glanceclient and keystoneauth
come from Debian's packages. The cloud is $OS_CLOUD in
$OS_CLIENT_CONFIG_FILE (written by scripts/openstack-cloud.sh).

  create NAME FILE [STORE]     upload FILE as a new raw image; prints its id
  show ID                      the image as JSON
  field ID NAME...             fields or properties, one line, space-separated
                               ("None" when absent)
  set ID KEY VALUE             a property
  unset ID KEY
  copy ID STORE...             Glance's own copy-image; waits for it
  delete ID
  service-user NAME PASSWORD PROJECT   a user with admin on PROJECT
  token                        a token of the cloud's user, for curl
"""
import json
import os
import sys
import time

import yaml
from glanceclient import Client
from keystoneauth1 import session
from keystoneauth1.identity import v3


def cloud_session():
    with open(os.environ["OS_CLIENT_CONFIG_FILE"]) as f:
        auth = yaml.safe_load(f)["clouds"][os.environ["OS_CLOUD"]]["auth"]
    return session.Session(auth=v3.Password(**auth))


def main(argv):
    command, args = argv[1], argv[2:]
    sess = cloud_session()
    if command == "token":
        print(sess.get_token())
        return
    if command == "service-user":
        from keystoneclient.v3 import client as keystone
        ks = keystone.Client(session=sess)
        name, password, project = args
        proj = ks.projects.create(name=project, domain="default")
        user = ks.users.create(name=name, password=password, domain="default")
        admin = [r for r in ks.roles.list() if r.name == "admin"][0]
        ks.roles.grant(admin, user=user, project=proj)
        return
    glance = Client("2", session=sess)
    if command == "create":
        name, path = args[0], args[1]
        image = glance.images.create(name=name, disk_format="raw", container_format="bare")
        with open(path, "rb") as data:
            if len(args) > 2:
                glance.images.upload(image.id, data, backend=args[2])
            else:
                glance.images.upload(image.id, data)
        print(image.id)
    elif command == "show":
        print(json.dumps(dict(glance.images.get(args[0]))))
    elif command == "field":
        image = dict(glance.images.get(args[0]))
        print(" ".join(str(image.get(name)) for name in args[1:]))
    elif command == "set":
        glance.images.update(args[0], **{args[1]: args[2]})
    elif command == "unset":
        glance.images.update(args[0], remove_props=[args[1]])
    elif command == "copy":
        glance.images.image_import(args[0], method="copy-image", stores=args[1:])
        for _ in range(600):
            image = glance.images.get(args[0])
            if all(s in image.get("stores", "").split(",") for s in args[1:]):
                return
            if image.get("os_glance_failed_import"):
                sys.exit("copy failed: " + image["os_glance_failed_import"])
            time.sleep(0.1)
        sys.exit("copy did not end within 60 s")
    elif command == "delete":
        glance.images.delete(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
