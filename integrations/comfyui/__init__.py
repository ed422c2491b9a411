"""Chronoseal nodes for ComfyUI: copy this folder into ComfyUI's `custom_nodes/`.

"Save Image (Chronoseal)" saves like ComfyUI's SaveImage and registers each image with a
Chronoseal server, hash-only (see chronoseal_save.py).
"""

from .chronoseal_save import SaveImageChronoseal

NODE_CLASS_MAPPINGS = {"SaveImageChronoseal": SaveImageChronoseal}
NODE_DISPLAY_NAME_MAPPINGS = {"SaveImageChronoseal": "Save Image (Chronoseal)"}
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "SaveImageChronoseal"]
