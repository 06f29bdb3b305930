"""The recipe runner: a recipe folder's stages (prepare -> train -> sample -> evaluate) end to end."""
