from fixtures import engine_and_images, playbooks  # noqa: F401  pylint: disable=unused-import
