"""Publishing a converted folder to the Hugging Face hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from mlx_lfm2.errors import CheckpointError


def upload(folder: Path, repo_id: str, api: HfApi | None = None) -> str:
    """Creates the model repo if needed and uploads the folder; returns the repo's URL."""
    api = api or HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="model", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    except HfHubHTTPError as error:
        raise CheckpointError(f"{repo_id}: upload refused by the hub ({str(error).splitlines()[0]})") from None
    except Exception as error:  # noqa: BLE001  offline, DNS, no token: the transport's own types vary
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        raise CheckpointError(f"{repo_id}: upload failed ({reason}); the converted folder {folder} is kept") from None
    return str(url)
