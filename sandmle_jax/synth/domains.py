"""Domain vocabularies: the words a task is re-cast into (the Strategist's "domain re-casting").

Each domain names its rows, its numeric and categorical features (with a plausible scale), its
targets for every task type, items to rank, cue words for text, and what its images and series
show. Generators draw names from here, so the same task DNA reads as a hospital task in one
domain and a factory task in another; the hidden rule never depends on the words.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class NumericFeature:
    name: str
    mean: float
    std: float
    decimals: int = 2


@dataclasses.dataclass(frozen=True)
class Domain:
    name: str
    entity: str  # what one row is
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]  # (column, its category values)
    binary: tuple[str, str, str]  # (target column, negative class, positive class)
    classes: tuple[str, tuple[str, ...]]  # (target column, class names)
    regression: tuple[tuple[str, str], ...]  # (target column, unit)
    labels: tuple[str, ...]  # multi-label columns
    grade: str  # ordinal target column
    items: tuple[str, tuple[str, ...]]  # (item noun, item ids) for ranking
    cue_words: tuple[str, ...]  # label-bearing words for text
    filler: tuple[str, ...]  # neutral words for text
    image: tuple[str, str]  # (what an image shows, what the shapes are)
    signal: tuple[str, str]  # (series name, unit)


def _num(*specs: tuple) -> tuple[NumericFeature, ...]:
    return tuple(NumericFeature(*s) for s in specs)


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain(
        name="healthcare", entity="patient",
        numeric=_num(("age", 52, 16, 0), ("bmi", 27, 5), ("systolic_bp", 128, 17, 0),
                     ("heart_rate", 74, 11, 0), ("glucose", 104, 22, 0),
                     ("cholesterol", 195, 35, 0),
                     ("creatinine", 1.0, 0.3), ("hemoglobin", 13.8, 1.6), ("sleep_hours", 6.9, 1.2),
                     ("steps_per_day", 6500, 2800, 0), ("visits_last_year", 3, 2, 0),
                     ("oxygen_saturation", 96.5, 1.8, 1), ("temperature", 36.9, 0.5, 1),
                     ("wbc_count", 7.2, 2.1)),
        categorical=(("ward", ("cardiology", "oncology", "neurology", "pediatrics", "geriatrics",
                               "orthopedics", "surgery", "emergency")),
                     ("insurance", ("public", "private", "none", "military", "employer", "mixed")),
                     ("smoker", ("never", "former", "current", "occasional"))),
        binary=("readmitted", "no", "yes"),
        classes=("diagnosis",
                 ("flu", "asthma", "migraine", "anemia", "diabetes", "arthritis", "angina")),
        regression=(("length_of_stay", "days"), ("treatment_cost", "kUSD"),
                    ("recovery_score", "points")),
        labels=("needs_imaging", "needs_bloodwork", "needs_referral", "needs_followup",
                "needs_therapy"),
        grade="severity_grade",
        items=("test", ("ecg", "mri", "xray", "ct", "ultrasound", "biopsy", "panel", "spirometry",
                        "eeg", "endoscopy", "doppler", "holter")),
        cue_words=("fever", "cough", "dizzy", "rash", "nausea", "swelling", "fatigue", "chills",
                   "numbness", "wheezing", "cramps", "insomnia"),
        filler=("patient", "reported", "doctor", "noted", "since", "morning", "clinic", "visit",
                "after", "during", "mild", "today", "history", "week", "and", "the"),
        image=("microscope slides", "cells"), signal=("heart monitor trace", "bpm")),
    Domain(
        name="retail", entity="store",
        numeric=_num(("floor_area", 1800, 600, 0), ("staff_count", 24, 8, 0),
                     ("avg_basket", 38, 12), ("footfall", 5200, 1900, 0),
                     ("promo_share", 0.22, 0.08),
                     ("shelf_gaps", 14, 6, 0), ("parking_spaces", 120, 45, 0),
                     ("competitor_distance", 3.2, 1.5), ("loyalty_members", 8400, 3000, 0),
                     ("returns_rate", 0.06, 0.02, 3), ("opening_hours", 78, 10, 0),
                     ("online_orders", 310, 120, 0), ("rent_per_m2", 21, 7),
                     ("stock_turns", 8.5, 2.4)),
        categorical=(("region", ("north", "south", "east", "west", "central", "coastal", "alpine")),
                     ("format", ("hyper", "super", "express", "outlet", "flagship", "kiosk")),
                     ("city_tier", ("tier1", "tier2", "tier3", "rural"))),
        binary=("churned", "stayed", "churned"),
        classes=("segment",
                 ("budget", "family", "premium", "student", "senior", "business", "tourist")),
        regression=(("weekly_sales", "kUSD"), ("basket_margin", "USD"), ("inventory_days", "days")),
        labels=("bought_dairy", "bought_bakery", "bought_produce", "bought_frozen",
                "bought_snacks"),
        grade="satisfaction_grade",
        items=("product", ("coffee", "bread", "milk", "apples", "rice", "pasta", "cheese", "eggs",
                           "juice", "soap", "tea", "yogurt")),
        cue_words=("cheap", "fresh", "crowded", "friendly", "rude", "discount", "broken", "clean",
                   "slow", "tasty", "expensive", "helpful"),
        filler=("customer", "bought", "store", "checkout", "aisle", "found", "shelf", "again",
                "weekend", "visit", "the", "and", "staff", "item", "price", "very"),
        image=("shelf photos", "products"), signal=("daily sales", "units")),
    Domain(
        name="manufacturing", entity="production batch",
        numeric=_num(("line_speed", 120, 18), ("oven_temp", 210, 12, 1), ("humidity", 45, 9, 1),
                     ("pressure", 6.2, 0.9), ("vibration", 0.42, 0.15, 3), ("torque", 58, 11),
                     ("coolant_flow", 14, 3), ("operator_hours", 6.5, 1.8),
                     ("material_density", 2.7, 0.2, 3),
                     ("cycle_time", 42, 7), ("spindle_rpm", 3200, 500, 0),
                     ("batch_size", 480, 150, 0),
                     ("tool_wear", 0.35, 0.12, 3), ("ambient_temp", 22, 3, 1)),
        categorical=(("machine", ("m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08")),
                     ("shift", ("morning", "afternoon", "night", "weekend")),
                     ("supplier", ("acme", "globex", "initech", "umbrella", "stark", "wayne"))),
        binary=("defective", "ok", "defect"),
        classes=("failure_mode", ("wear", "overheat", "misalign", "crack", "leak", "jam", "none")),
        regression=(("yield_pct", "percent"), ("energy_use", "kWh"), ("scrap_weight", "kg")),
        labels=("flag_surface", "flag_dimension", "flag_weld", "flag_paint", "flag_seal"),
        grade="quality_grade",
        items=("part", ("bolt", "gear", "valve", "seal", "bearing", "shaft", "spring", "bracket",
                        "pump", "filter", "belt", "clamp")),
        cue_words=("grinding", "smoke", "leak", "rattle", "overheated", "jammed", "smooth", "quiet",
                   "crack", "rust", "misaligned", "worn"),
        filler=("operator", "noticed", "machine", "line", "during", "shift", "the", "and",
                "inspection", "after", "unit", "checked", "part", "station", "was", "then"),
        image=("inspection camera frames", "defects"), signal=("spindle vibration", "mm/s")),
    Domain(
        name="it_operations", entity="server",
        numeric=_num(("cpu_util", 0.55, 0.18, 3), ("mem_util", 0.62, 0.15, 3),
                     ("disk_iops", 850, 300, 0),
                     ("net_mbps", 240, 90), ("open_conns", 410, 150, 0), ("latency_ms", 38, 14),
                     ("error_rate", 0.012, 0.006, 4), ("uptime_days", 41, 25, 0),
                     ("queue_depth", 12, 6, 0),
                     ("gc_pause_ms", 18, 7), ("thread_count", 220, 70, 0),
                     ("cache_hit", 0.87, 0.06, 3),
                     ("deploys_week", 4, 2, 0), ("temp_c", 51, 7, 1)),
        categorical=(("datacenter", ("fra1", "iad2", "sin3", "syd1", "gru1", "lhr2", "nrt1")),
                     ("tier", ("web", "api", "db", "cache", "batch", "queue")),
                     ("os", ("linux", "bsd", "windows", "unix"))),
        binary=("incident", "normal", "incident"),
        classes=("root_cause",
                 ("network", "disk", "memory", "config", "deploy", "dependency", "load")),
        regression=(("response_time", "ms"), ("throughput", "req/s"), ("cost_per_day", "USD")),
        labels=("alert_cpu", "alert_memory", "alert_disk", "alert_network", "alert_latency"),
        grade="priority_grade",
        items=("runbook", ("restart", "rollback", "scale", "failover", "flush", "patch", "reindex",
                           "drain", "rotate", "throttle", "reboot", "migrate")),
        cue_words=("timeout", "refused", "oom", "panic", "retry", "degraded", "healthy", "stable",
                   "spike", "deadlock", "throttled", "recovered"),
        filler=("service", "logged", "request", "node", "after", "deploy", "the", "and", "cluster",
                "check", "job", "queue", "at", "host", "user", "then"),
        image=("rack thermal images", "hot spots"), signal=("request rate", "req/s")),
    Domain(
        name="transport", entity="trip",
        numeric=_num(("distance_km", 14, 8), ("duration_min", 26, 11), ("passengers", 2, 1, 0),
                     ("avg_speed", 38, 12), ("fuel_level", 0.6, 0.2, 3), ("stops", 3, 2, 0),
                     ("driver_rating", 4.6, 0.3), ("vehicle_age", 6, 3, 0),
                     ("traffic_index", 0.45, 0.2, 3),
                     ("temperature", 16, 8, 1), ("toll_cost", 4.5, 2.5), ("wait_min", 6, 3),
                     ("elevation_gain", 85, 50, 0), ("tire_pressure", 2.3, 0.2)),
        categorical=(("vehicle", ("sedan", "van", "bus", "truck", "scooter", "bike", "suv")),
                     ("weather", ("clear", "rain", "snow", "fog", "wind")),
                     ("zone", ("downtown", "airport", "suburb", "harbor", "campus", "industrial"))),
        binary=("delayed", "on_time", "late"),
        classes=("route_type",
                 ("express", "local", "shuttle", "freight", "night", "school", "charter")),
        regression=(("fare", "USD"), ("arrival_delay", "min"), ("fuel_used", "litres")),
        labels=("used_highway", "used_ferry", "used_bridge", "used_tunnel", "used_toll"),
        grade="comfort_grade",
        items=("route",
               ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12")),
        cue_words=("jam", "detour", "smooth", "crowded", "late", "punctual", "accident", "flat",
                   "scenic", "bumpy", "closed", "fast"),
        filler=("driver", "route", "passenger", "stop", "morning", "road", "the", "and", "bus",
                "ride", "city", "took", "ticket", "near", "was", "then"),
        image=("road camera frames", "vehicles"), signal=("traffic flow", "vehicles/h")),
    Domain(
        name="finance", entity="loan application",
        numeric=_num(("income", 58000, 21000, 0), ("loan_amount", 18000, 9000, 0),
                     ("credit_score", 690, 60, 0), ("debt_ratio", 0.34, 0.12, 3),
                     ("age", 41, 12, 0),
                     ("employment_years", 7, 5, 0), ("open_accounts", 5, 2, 0),
                     ("late_payments", 1, 1, 0),
                     ("savings", 12000, 8000, 0), ("interest_rate", 7.5, 2.2),
                     ("term_months", 48, 14, 0),
                     ("card_utilization", 0.41, 0.18, 3), ("dependents", 1, 1, 0),
                     ("inquiries", 2, 1, 0)),
        categorical=(("purpose",
                      ("car", "home", "education", "medical", "business", "travel", "debt")),
                     ("housing", ("own", "rent", "mortgage", "family")),
                     ("channel", ("branch", "online", "broker", "partner", "phone"))),
        binary=("default", "repaid", "default"),
        classes=("risk_band", ("aaa", "aa", "a", "bbb", "bb", "b", "ccc")),
        regression=(("expected_loss", "USD"), ("credit_limit", "kUSD"),
                    ("spend_next_month", "USD")),
        labels=("has_mortgage", "has_card", "has_auto", "has_student", "has_overdraft"),
        grade="risk_grade",
        items=("offer",
               ("cashback", "lowrate", "travel", "premium", "student", "secured", "balance",
                         "rewards", "business", "gold", "platinum", "basic")),
        cue_words=("overdue", "refund", "fraud", "bonus", "declined", "approved", "fee", "dispute",
                   "raise", "debt", "savings", "penalty"),
        filler=("client", "account", "bank", "called", "payment", "month", "the", "and", "card",
                "statement", "about", "balance", "branch", "asked", "was", "then"),
        image=("scanned cheques", "stamps"), signal=("account balance", "USD")),
    Domain(
        name="agriculture", entity="field plot",
        numeric=_num(("rainfall_mm", 620, 160, 0), ("soil_ph", 6.5, 0.6), ("nitrogen", 42, 12),
                     ("phosphorus", 28, 9), ("potassium", 190, 45, 0), ("sun_hours", 2100, 300, 0),
                     ("plot_area", 3.4, 1.3), ("seed_density", 68, 12), ("irrigation", 240, 90, 0),
                     ("slope_deg", 4, 3, 1), ("organic_matter", 3.1, 0.9),
                     ("frost_days", 22, 10, 0),
                     ("pest_traps", 6, 3, 0), ("altitude", 310, 180, 0)),
        categorical=(("crop",
                      ("wheat", "maize", "barley", "soy", "canola", "oats", "rye", "sorghum")),
                     ("soil_type", ("clay", "loam", "sand", "silt", "peat")),
                     ("tillage", ("none", "minimal", "conventional", "strip"))),
        binary=("blight", "healthy", "blighted"),
        classes=("growth_stage",
                 ("seedling", "tillering", "jointing", "booting", "heading", "flowering",
                  "ripening")),
        regression=(("yield_t_ha", "t/ha"), ("water_need", "mm"), ("protein_pct", "percent")),
        labels=("has_aphids", "has_rust", "has_mildew", "has_weeds", "has_drought"),
        grade="vigor_grade",
        items=("treatment", ("lime", "urea", "potash", "compost", "fungicide", "mulch", "cover",
                             "drip", "gypsum", "manure", "biochar", "rotation")),
        cue_words=("wilting", "yellow", "lush", "dry", "flooded", "spots", "mold", "green",
                   "stunted", "vigorous", "brittle", "patchy"),
        filler=("farmer", "field", "crop", "noticed", "rows", "after", "the", "and", "season",
                "north", "plot", "leaves", "soil", "walked", "was", "then"),
        image=("drone images", "plants"), signal=("soil moisture", "percent")),
    Domain(
        name="energy", entity="household meter",
        numeric=_num(("floor_area", 110, 40, 0), ("occupants", 3, 1, 0),
                     ("insulation", 0.55, 0.2, 3),
                     ("heating_degree_days", 2600, 500, 0), ("solar_kw", 2.1, 1.5),
                     ("appliances", 14, 4, 0),
                     ("ev_count", 0, 1, 0), ("building_age", 34, 20, 0),
                     ("thermostat", 20.5, 1.5, 1),
                     ("window_area", 22, 7), ("battery_kwh", 4, 4, 1), ("tariff", 0.28, 0.06, 3),
                     ("peak_share", 0.38, 0.1, 3), ("outdoor_temp", 11, 6, 1)),
        categorical=(("heating", ("gas", "heatpump", "electric", "oil", "district", "wood")),
                     ("dwelling", ("flat", "terrace", "detached", "semi", "bungalow")),
                     ("region", ("north", "south", "east", "west", "islands", "central"))),
        binary=("high_usage", "normal", "high"),
        classes=("usage_profile",
                 ("commuter", "homeworker", "retired", "family", "nightshift", "student",
                  "vacant")),
        regression=(("annual_kwh", "kWh"), ("peak_kw", "kW"), ("bill", "USD")),
        labels=("has_heatpump", "has_solar", "has_ev", "has_battery", "has_smartplug"),
        grade="efficiency_grade",
        items=("upgrade",
               ("led", "insulate", "solar", "battery", "heatpump", "glazing", "smartmeter",
                           "draught", "boiler", "tariff", "ev", "shading")),
        cue_words=("drafty", "cozy", "expensive", "outage", "efficient", "flicker", "cold", "warm",
                   "noisy", "bill", "saving", "spike"),
        filler=("resident", "home", "meter", "reading", "winter", "night", "the", "and", "heating",
                "house", "power", "noticed", "room", "during", "was", "then"),
        image=("thermal images", "heat leaks"), signal=("hourly load", "kW")),
    Domain(
        name="astronomy", entity="observation",
        numeric=_num(("magnitude", 14.2, 1.8), ("redshift", 0.45, 0.2, 3), ("ra_deg", 180, 90, 1),
                     ("dec_deg", 5, 30, 1), ("parallax", 2.1, 1.2, 3),
                     ("color_index", 0.65, 0.3, 3),
                     ("exposure_s", 120, 40, 0), ("seeing", 1.1, 0.3), ("airmass", 1.3, 0.2, 3),
                     ("flux_ratio", 0.9, 0.3, 3), ("period_days", 12, 7),
                     ("ellipticity", 0.25, 0.12, 3),
                     ("sky_background", 21, 0.8), ("snr", 35, 14)),
        categorical=(("telescope", ("t1", "t2", "t3", "t4", "t5", "t6")),
                     ("filter_band", ("u", "g", "r", "i", "z", "y")),
                     ("survey", ("deep", "wide", "transient", "legacy"))),
        binary=("is_variable", "constant", "variable"),
        classes=("object_class",
                 ("star", "galaxy", "quasar", "nova", "binary", "nebula", "cluster")),
        regression=(("distance_mpc", "Mpc"), ("mass", "solar"), ("luminosity", "Lsun")),
        labels=("has_jet", "has_disk", "has_halo", "has_companion", "has_flare"),
        grade="quality_flag",
        items=("followup", ("spectro", "photo", "radio", "xray", "ir", "uv", "astrometry", "polar",
                            "timing", "imaging", "ifu", "narrowband")),
        cue_words=("bright", "faint", "flare", "dim", "blue", "red", "blended", "isolated",
                   "saturated", "streak", "cosmic", "diffuse"),
        filler=("observer", "frame", "source", "noted", "field", "night", "the", "and", "image",
                "catalog", "near", "detected", "object", "during", "was", "then"),
        image=("telescope cutouts", "stars"), signal=("light curve", "flux")),
)}


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise KeyError(f"unknown domain {name!r}; known domains: {sorted(DOMAINS)}")
    return DOMAINS[name]


def domain_names() -> list[str]:
    return sorted(DOMAINS)
