--[[
 DSA-110 AOFlagger strategy for one real-time group: 24 integrations x 768
 channels of 244 kHz, XX and YY, one baseline per call (dsa110_contimg.flagging).

 Detection runs on the amplitude of Stokes I = (XX + YY) / 2: a terrestrial
 emitter reaches the co-located X and Y dipoles with the same geometric phase,
 so its power adds in I while the noise drops by sqrt(2), and one detection
 instead of two keeps a full group (4560 baselines) within the real-time
 budget. Polarization-specific outliers are left to the MAD clip that follows
 in Python. The input is either that amplitude as one image (FlagOptions
 aoflagger_input 'stokes-i', the default) or the complex XX and YY ('xx-yy').

 A tile of only 24 integrations leaves SumThreshold little room, so the
 background is a small Gaussian low-pass after averaging 8 channels, refitted
 twice with what the conservative passes found masked out; the final pass runs
 on the residual with only the input flags. There are no whole-integration or
 whole-channel RMS thresholds and no rank-operator growth: with 24 integrations
 one burst over a quarter of the band would take whole integrations and
 channels with it; the baseline-consensus rules in Python do that with explicit
 fractions. Input flags (autocorrelations, zeros, short baselines, missing
 subbands) are kept.
]]

aoflagger.require_min_version("3.1")

function execute(input)
  local base_threshold = 1.5 -- SumThreshold sensitivity of the final pass (lower flags more)
  local fit_factors = { 4.0, 2.0 } -- threshold factors of the passes that mask the background fit
  local transient_threshold_factor = 1.0 -- frequency-direction (broadband burst) sensitivity relative to base
  local chan_bin = 8 -- channels averaged before the low-pass
  local time_kernel, chan_kernel = 7, 9 -- low-pass kernel: integrations, binned channels
  local time_sigma, chan_sigma = 2.0, 2.0 -- its Gaussian widths (integrations, binned channels)

  local original = input:copy() -- carries the input flags
  local amp -- amplitude of Stokes I: handed over as such ('stokes-i'), or made from complex XX and YY
  if input:is_complex() then
    amp = input:convert_to_polarization("I"):convert_to_complex("amplitude")
  else
    amp = input:copy()
  end
  local amp_copy = amp:copy()
  local data = amp:copy()

  for _, factor in ipairs(fit_factors) do
    local level = factor * base_threshold
    aoflagger.sumthreshold(data, level, level * transient_threshold_factor, true, true)
    -- background from the unflagged amplitudes only
    data:set_visibilities(amp_copy)
    data:join_mask(amp_copy)
    local binned = aoflagger.downsample(data, 1, chan_bin, true)
    aoflagger.low_pass_filter(binned, time_kernel, chan_kernel, time_sigma, chan_sigma)
    aoflagger.upsample_image(binned, data, 1, chan_bin)
    local residual = amp_copy - data
    residual:set_mask(data)
    data = residual
  end

  data:set_mask(amp_copy)
  aoflagger.sumthreshold(data, base_threshold, base_threshold * transient_threshold_factor, true, true)

  input:join_mask(data)
  input:join_mask(original)
  input:flag_nans()
end
