"""fetch worker configuration (pydantic): where the weights come from and where they go."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from drover_workers.common.config import WorkerModel
from drover_workers.common.credentials import Credentials
from drover_workers.common.uris import UriError, parse_hf, parse_s3, scheme_of

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class S3Options(WorkerModel):
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (else AWS default)")
    region: str | None = None


class Source(WorkerModel):
    uri: str = Field(
        description="hf://org/name@rev, s3://bucket/prefix, pvc://claim/path, file:///p"
    )
    credentials: Credentials | None = None
    s3: S3Options | None = None

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        try:
            kind = scheme_of(value)
            if kind == "path":
                raise UriError(
                    f"{value!r}: use a URI (hf://, s3://, pvc://, file:///absolute/path)"
                )
            if kind == "hf":
                parse_hf(value)
            elif kind == "s3":
                parse_s3(value)
        except UriError as exc:
            raise ValueError(str(exc)) from None
        return value


class FetchConfig(WorkerModel):
    source: Source
    cache_root: str = Field(description="the cache volume's mount path, e.g. /models")
    name: str = Field(description="the model's directory under cacheRoot (DNS-1123 label)")
    revision: str | None = Field(None, description="overrides the @revision of an hf:// URI")
    hf_endpoint: str | None = Field(None, description="hub base URL; default $HF_ENDPOINT")
    pvc_root: str | None = Field(None, description="where pvc:// claims are mounted")

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '.', e.g. qwen-0-5b")
        return value
