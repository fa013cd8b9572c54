"""The core: the roles' protocols, the hooks and the plugin registry, recipes, resources, errors
and seeds. Imports nothing else of wmkit."""
