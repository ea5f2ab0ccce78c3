"""Response models of the JSON API (they document the answers in the generated OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a listing."""

    total: int = Field(description="Rows matching the filters, over all pages.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Rows skipped before this page.")
    items: list[T]


class GroupSummary(BaseModel):
    """One observation group of the ingest queue."""

    group_id: str = Field(description="Timestamp of the group's first subband file (UTC).")
    state: str = Field(description="collecting, pending, in_progress, completed, failed or held.")
    processing_stage: str | None = Field(description="Last finished stage (converted, calibrated, applied, imaged).")
    received_at: str | None
    last_update: str | None
    retry_count: int
    error: str | None = Field(description="Last error, naming the stage and the file.")
    hold_reason: str | None
    partial: bool = Field(description="Processed with missing subbands (flagged).")
    n_files: int
    expected_subbands: int


class FileEntry(BaseModel):
    subband: int
    path: str = Field(description="Where the file was registered.")
    exists: bool = Field(description="Whether it is still there.")
    quarantined: str | None = Field(description="Where it is kept when its group failed on bad input.")


class SetAsideFile(BaseModel):
    """A file the queue saw but does not process as a group's subband."""

    path: str
    name: str
    kind: str = Field(description="ignored (bad name, out-of-range subband, not a regular file), late, "
                                  "duplicate-unchecked, duplicate (identical copy dropped), conflict "
                                  "(different content: group held for an operator) or rejected.")
    reason: str | None
    group_id: str | None
    subband: int | None
    added_at: str | None
    resolved_at: str | None


class StageTiming(BaseModel):
    stage: str = Field(description="convert, calibrate, apply, image or qa.")
    done: bool
    skipped: bool = Field(description="A target group has no calibrate stage.")
    seconds: float | None


class MSRow(BaseModel):
    """One Measurement Set of the products database."""

    path: str
    name: str
    group_id: str
    start_mjd: float | None
    end_mjd: float | None
    mid_mjd: float | None
    processed_at: str | None
    status: str | None
    stage: str | None
    stage_updated_at: str | None
    cal_applied: bool | None
    imagename: str | None
    ra_deg: float | None
    dec_deg: float | None


class ImageUrls(BaseModel):
    self: str
    page: str = Field(description="Dashboard page of the image.")
    fits: str | None
    thumbnail: str | None
    qa_plot: str | None


class ImageSummary(BaseModel):
    """One image product with its QA numbers."""

    id: int
    name: str
    path: str
    ms_path: str | None
    group_id: str | None
    created_at: str | None
    type: str | None = Field(description="image or pbcor.")
    backend: str | None = Field(description="wsclean or tclean.")
    status: str | None
    pbcor: bool | None
    freq_hz: float | None
    noise_jy: float | None = Field(description="Robust rms (Jy/beam).")
    peak_jy: float | None
    dynamic_range: float | None
    beam_major_arcsec: float | None
    beam_minor_arcsec: float | None
    beam_pa_deg: float | None
    n_detections: int | None
    flux_ratio_median: float | None = Field(description="Median measured/catalog flux of matched sources.")
    astrometry_offset_arcsec: float | None
    quality_state: str | None = Field(default=None, description="Worst quality gate: pass, warn or fail (None: "
                                                                "not assessed).")
    flux_scale_ratio: float | None = Field(default=None, description="Median measured/catalog flux of the compact "
                                                                     "references.")
    flux_scale_err: float | None = None
    flux_scale_n: int | None = Field(default=None, description="References of the flux scale.")
    thermal_noise_jy: float | None = Field(default=None, description="Thermal noise predicted from the MS's weights.")
    rms_over_thermal: float | None = None
    ref_offset_arcsec: float | None = Field(default=None, description="Median offset of the references.")
    urls: ImageUrls


class DetectionRow(BaseModel):
    """A source found in an image and its master-catalog match."""

    id: int | None
    ra_deg: float
    dec_deg: float
    ra_err_arcsec: float | None
    dec_err_arcsec: float | None
    peak_jy: float | None
    peak_err_jy: float | None
    int_jy: float | None
    int_err_jy: float | None
    snr: float | None
    catalog_source_id: int | None
    catalog_sep_arcsec: float | None
    catalog_flux_jy: float | None
    flux_ratio: float | None


class Gate(BaseModel):
    """One quality gate of an image."""

    name: str
    value: float | None
    warn: float
    fail: float
    state: str = Field(description="pass, warn, fail or n/a (value unknown: does not count).")
    higher_is_worse: bool = Field(description="False: values below the thresholds are bad.")


class ImageDetail(ImageSummary):
    qa: dict[str, Any]
    timings: dict[str, Any]
    gates: list[Gate] = Field(default_factory=list, description="Quality gates (empty: not assessed).")
    detections: list[DetectionRow]


class FlagSummary(BaseModel):
    """The RFI flagging of a group's MS."""

    flagger: str | None
    seconds: float | None
    fraction_base: float | None = Field(description="Flagged before RFI flagging (autocorrelations, zeros, gaps).")
    fraction_flagged: float | None = Field(description="Flagged after RFI flagging.")
    fraction_rfi: float | None = Field(description="Flagged as RFI beyond the base flags.")
    per_subband: dict[str, float]
    per_antenna: dict[str, float]
    per_integration: list[float]
    flagged_antennas: dict[str, str]
    plot_url: str | None


class GroupDetail(GroupSummary):
    files: list[FileEntry]
    other_files: list[SetAsideFile] = Field(description="Duplicates and late files of this group.")
    operator_hold: bool = Field(description="Held until an operator resolves it (contimg queue release).")
    flags: FlagSummary | None = Field(default=None, description="RFI flagging report, once flagged.")
    missing_subbands: list[int]
    notes: str | None
    checkpoint_path: str | None
    stages: list[StageTiming]
    metrics: dict[str, Any]
    latency_s: float | None = Field(description="Seconds from the last file landing to the image recorded.")
    ms: MSRow | None
    images: list[ImageSummary]


class CalTable(BaseModel):
    table_type: str = Field(description="K (delay), B (bandpass) or G (gain).")
    path: str
    name: str
    order_index: int
    quality_metrics: dict[str, Any]
    plot_url: str | None


class CalSetModel(BaseModel):
    """A calibration set: the tables of one solve and their validity window."""

    set_name: str
    status: str
    cal_field: str | None
    refant: str | None
    valid_start_mjd: float | None
    valid_end_mjd: float | None
    valid_start: str
    valid_end: str
    source_ms_path: str | None
    created_at: str | None
    solver_command: str | None
    solver_version: str | None
    notes: str
    tables: list[CalTable]


class HeartbeatModel(BaseModel):
    name: str
    pid: int | None
    host: str | None
    updated_at: str
    age_s: float
    state: str = Field(description="alive; stale when silent for over a minute; stopped after a clean stop.")
    running: list[str] = Field(description="Groups the daemon was processing at its last beat.")
    info: dict[str, Any]


class StatusResponse(BaseModel):
    """Pipeline status at a glance."""

    time: str
    queue: dict[str, int] = Field(description="Number of groups in each state.")
    total_groups: int
    recent_groups: list[GroupSummary]
    heartbeat: HeartbeatModel | None = Field(description="The streaming daemon's last heartbeat.")
    active_calibration_sets: list[CalSetModel] = Field(
        description="Active sets valid at the newest group's time (the ones being applied).")
    writes_enabled: bool = Field(description="Whether PIPELINE_API_TOKEN is set (write endpoints on).")


class DiskRow(BaseModel):
    name: str
    path: str
    exists: bool
    total_bytes: int | None = None
    free_bytes: int | None = None
    used_percent: float | None = None


class SystemMetrics(BaseModel):
    time: str
    cpu_percent: float
    cpu_count: int | None
    load_avg: list[float]
    memory: dict[str, float]
    disks: list[DiskRow]


class PerfGroup(BaseModel):
    group_id: str
    recorded_at: str | None
    writer_type: str | None
    convert_s: float | None
    calibrate_s: float | None
    apply_s: float | None
    image_s: float | None
    qa_s: float | None
    latency_s: float | None


class PerfStat(BaseModel):
    n: int
    median: float | None
    p90: float | None
    max: float | None


class ThroughputBin(BaseModel):
    start: str
    width_s: float
    completed: int


class PerformanceResponse(BaseModel):
    """Per-stage timings over time."""

    groups: list[PerfGroup]
    summary: dict[str, PerfStat]
    throughput: list[ThroughputBin]


class ReprocessResponse(BaseModel):
    group_id: str
    previous_state: str
    state: str
