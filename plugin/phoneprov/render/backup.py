"""The backup & restore file of one device: its files as one settings document
(`core.phonemerge.merged_document`), for `render --merged` and the admin page alike."""

from __future__ import annotations

from ..core.errors import InputError
from ..core.inventory import Device
from ..core.phonemerge import apply_settings, merged_document
from ..core.phoneschema import PhoneSchema
from .catalog import Catalog


def merged_files(
    catalog: Catalog, device: Device, schema: PhoneSchema
) -> tuple[bytes, list[tuple[str, str]]]:
    """The merged document and what the phone's schema strips from it, as (file, xpath);
    a file the phone could not apply raises InputError naming it."""
    documents = []
    stripped: list[tuple[str, str]] = []
    for listed in catalog.names(device):
        found = catalog.file(device, listed)
        assert found is not None  # a listed name
        try:
            stripped += [(listed, x) for x in apply_settings([found.body], schema).stripped]
        except InputError as e:
            raise InputError(f"{device.mac} {listed}: {e}") from None
        documents.append(found.body)
    return merged_document(documents, schema), stripped
