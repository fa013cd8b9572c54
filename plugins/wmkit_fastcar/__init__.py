"""A faster CarRacing-v3 whose frames are byte-identical to gymnasium's.

Nearly all of a CarRacing step is rendering, and most of that is Python: every one of the
~400 grass patches and ~600 road polygons is rotated vertex by vertex with
``pygame.math.Vector2.rotate_rad`` and tested against the screen, although only a few dozen
are visible. Here the same arithmetic is done for all polygons at once with NumPy, in the same
floating-point operations and order as pygame's C code, so the visible set and every vertex
passed to ``gfxdraw`` are bit-for-bit what gymnasium computes; the draw calls are unchanged.
Registered as ``wmkit/CarRacing-v3``; rewards, physics and terminations are gymnasium's own.
Also: the background square, once it covers the whole surface, is a ``fill`` (the same
pixels as its ``filled_polygon``, a fifth of the cost); the car's vertices are rotated in one
NumPy call; the dashboard's score text, which gymnasium re-renders (and loads the font for)
on every frame, is cached.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import gymnasium
import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics, car_racing
from gymnasium.envs.box2d.car_racing import CarRacing
from pygame import gfxdraw

import wmkit

ENV_ID = "wmkit/CarRacing-v3"
# pygame.math.Vector2's default epsilon for its exact 0/90/180/270-degree rotations.
_EPSILON = 1e-6
_TWO_PI = 2 * math.pi
# Pixels of slack around the surface for the anti-aliased edge (gfxdraw rounds coordinates).
_MARGIN = 2.0


def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """``Vector2(p).rotate_rad(angle)`` for every row of ``points`` [..., 2], exactly."""
    angle = math.fmod(angle, _TWO_PI)
    if angle < 0:
        angle += _TWO_PI
    x, y = points[..., 0], points[..., 1]
    if math.fmod(angle + _EPSILON, math.pi / 2) < 2 * _EPSILON:
        quarter = int((angle + _EPSILON) / (math.pi / 2)) % 4
        rotated = [(x, y), (-y, x), (-x, -y), (y, -x)][quarter]
        return np.stack(rotated, axis=-1)
    s, c = math.sin(angle), math.cos(angle)
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def to_screen(points: np.ndarray, zoom: float, translation, angle: float) -> np.ndarray:
    """World points [..., 2] to surface pixels, in gymnasium's order of operations: rotate
    (as ``Vector2.rotate_rad``), then ``* zoom + translation`` per coordinate."""
    screen = rotate(points, angle)
    screen[..., 0] = screen[..., 0] * zoom + translation[0]
    screen[..., 1] = screen[..., 1] * zoom + translation[1]
    return screen


def _grass() -> np.ndarray:
    """The grass patches, in gymnasium's drawing order, as [400, 4, 2]."""
    g = car_racing.GRASS_DIM
    return np.array(
        [
            [(g * x + g, g * y), (g * x, g * y), (g * x, g * y + g), (g * x + g, g * y + g)]
            for x in range(-20, 20, 2)
            for y in range(-20, 20, 2)
        ],
        dtype=np.float64,
    )


def covers_surface(poly: np.ndarray, width: int, height: int, margin: float = 8.0) -> bool:
    """Whether the convex polygon [k, 2] holds the ``width`` x ``height`` surface with
    ``margin`` pixels to spare on every side, within gfxdraw's 16-bit coordinates.

    Then its anti-aliased outline lies wholly off the surface and its fill covers every pixel.
    """
    if np.abs(poly).max() > 30000:
        return False
    corners = np.array(
        [
            (-margin, -margin),
            (width + margin, -margin),
            (width + margin, height + margin),
            (-margin, height + margin),
        ]
    )
    edges = np.roll(poly, -1, axis=0) - poly
    # The cross product of each edge with the vector to each corner: one sign throughout
    # means every corner is on the inner side of every edge.
    rel = corners[:, None, :] - poly[None, :, :]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    return bool((cross > 0).all() or (cross < 0).all())


def _wheel_stripe(phase: float) -> list[tuple] | None:
    """The lighter band that shows a wheel turning, in the wheel's frame, as ``Car.draw``
    places it (None when it is out of sight)."""
    a1, a2 = phase, phase + 1.2
    s1, s2, c1, c2 = math.sin(a1), math.sin(a2), math.cos(a1), math.cos(a2)
    if s1 > 0 and s2 > 0:
        return None
    if s1 > 0:
        c1 = np.sign(c1)
    if s2 > 0:
        c2 = np.sign(c2)
    w, r, size = car_dynamics.WHEEL_W, car_dynamics.WHEEL_R, car_dynamics.SIZE
    return [
        (-w * size, +r * c1 * size),
        (+w * size, +r * c1 * size),
        (+w * size, +r * c2 * size),
        (-w * size, +r * c2 * size),
    ]


class _Polygons:
    """Polygons [n, k, 2] with each one's vertex mean and largest distance from it."""

    def __init__(self, vertices: np.ndarray):
        self.vertices = vertices
        self.centres = vertices.mean(axis=1)
        self.radii = np.sqrt(((vertices - self.centres[:, None]) ** 2).sum(axis=-1)).max(axis=1)


class _CachedFont:
    """A pygame Font whose rendered texts are kept: the score shown on the dashboard changes
    a few times a second, but gymnasium renders it (and loads the font) on every frame."""

    def __init__(self, font: pygame.font.Font):
        self.font = font
        self.texts: dict[tuple, pygame.Surface] = {}

    def render(self, text, antialias, color, background=None):
        key = (text, antialias, tuple(color), None if background is None else tuple(background))
        if key not in self.texts:
            self.texts[key] = self.font.render(text, antialias, color, background)
        return self.texts[key]


_FONTS: dict[tuple, _CachedFont] = {}


@contextmanager
def _cached_fonts():
    """While our frame renders, ``pygame.font.Font`` hands out cached fonts (same glyphs,
    same pixels); gymnasium's own environments are untouched outside this block."""
    original = pygame.font.Font

    def font(path, size):
        if (path, size) not in _FONTS:
            _FONTS[(path, size)] = _CachedFont(original(path, size))
        return _FONTS[(path, size)]

    pygame.font.Font = font
    try:
        yield
    finally:
        pygame.font.Font = original


class FastCarRacing(CarRacing):
    """gymnasium's CarRacing with the road and grass culled in NumPy and the dashboard
    text cached."""

    _GRASS = _Polygons(_grass())

    def __init__(self, *args, observation_size: int | None = None, **kwargs):
        """``observation_size`` (not gymnasium's: frames then differ from CarRacing-v3)
        renders the view above the dashboard straight to a square of that size, skipping
        the 96x96 frame and the crop-and-resize that the pipeline would do next."""
        super().__init__(*args, **kwargs)
        self.observation_size = observation_size
        if observation_size is not None:
            self.observation_space = gymnasium.spaces.Box(
                0, 255, (observation_size, observation_size, 3), np.uint8
            )

    def _create_image_array(self, screen, size):
        if self.observation_size is None or size != (car_racing.STATE_W, car_racing.STATE_H):
            return super()._create_image_array(screen, size)
        # The dashboard is the bottom 12 of 96 rows; keep the 84 rows above it.
        view = screen.subsurface((0, 0, screen.get_width(), screen.get_height() * 84 // 96))
        n = self.observation_size
        return super()._create_image_array(view, (n, n))

    # Set by wmkit's ActionRepeat for the frames an agent never sees: their physics and
    # rewards are computed as always, and the last rendered frame stands in for them.
    skip_observation = False

    def _render(self, mode: str):
        if (
            self.skip_observation
            and mode == "state_pixels"
            and getattr(self, "state", None) is not None
        ):
            return self.state.copy()
        with _cached_fonts():
            return super()._render(mode)

    def reset(self, *args, **kwargs):
        self._road = None
        result = super().reset(*args, **kwargs)
        # gymnasium calls ``self.car.draw(...)`` from ``_render``; this car draws the same
        # polygons with one rotation for all of its vertices.
        self.car.draw = self._draw_car
        return result

    def _draw_car(self, surface, zoom, translation, angle, draw_particles=True) -> None:
        """``Car.draw``: the same Box2D transforms, colours and order, but every vertex is
        rotated, zoomed and moved at once (the particles, drawn only for human viewing, are
        left to gymnasium)."""
        car = self.car
        if draw_particles:
            return type(car).draw(car, surface, zoom, translation, angle, draw_particles)
        paths, colors = [], []
        for obj in car.drawlist:
            color = [int(c * 255) for c in obj.color]
            for f in obj.fixtures:
                trans = f.body.transform
                paths.append([tuple(trans * v) for v in f.shape.vertices])
                colors.append(color)
                stripe = _wheel_stripe(obj.phase) if "phase" in obj.__dict__ else None
                if stripe is not None:
                    paths.append([tuple(trans * v) for v in stripe])
                    colors.append(car_dynamics.WHEEL_WHITE)
        vertices = np.array([v for path in paths for v in path], np.float64)
        points = to_screen(vertices, zoom, translation, angle)
        points = [tuple(v) for v in points.tolist()]
        start = 0
        for path, color in zip(paths, colors):
            pygame.draw.polygon(surface, color=color, points=points[start : start + len(path)])
            start += len(path)

    def _draw_batch(self, polys: _Polygons, colors, zoom: float, translation, angle) -> None:
        # A polygon lies within ``zoom * radius`` of its centre's image (rotation keeps
        # lengths), so rotating the ~1,000 centres alone rules out nearly every polygon;
        # the slack of a pixel more than covers the rounding of either computation.
        c = to_screen(polys.centres, zoom, translation, angle)
        reach = polys.radii * zoom + (_MARGIN + 1.0)
        cx, cy = c[:, 0], c[:, 1]
        maybe = np.flatnonzero(
            (cx + reach >= 0)
            & (cx - reach <= car_racing.WINDOW_W)
            & (cy + reach >= 0)
            & (cy - reach <= car_racing.WINDOW_H)
        )
        screen = to_screen(polys.vertices[maybe], zoom, translation, angle)
        # Polygons whose bounding box misses the surface change no pixel (gfxdraw clips to
        # the surface), so only the few that touch it are tested further...
        lo, hi = screen.min(axis=1), screen.max(axis=1)
        touches = np.flatnonzero(
            (hi[:, 0] >= -_MARGIN)
            & (lo[:, 0] <= car_racing.WINDOW_W + _MARGIN)
            & (hi[:, 1] >= -_MARGIN)
            & (lo[:, 1] <= car_racing.WINDOW_H + _MARGIN)
        )
        # ... with gymnasium's own test (a vertex within MAX_SHAPE_DIM of the screen), so
        # that exactly the polygons gymnasium draws on the surface are drawn, in its order.
        near = screen[touches]
        m = car_racing.MAX_SHAPE_DIM
        inside = (
            (near[..., 0] >= -m)
            & (near[..., 0] <= car_racing.WINDOW_W + m)
            & (near[..., 1] >= -m)
            & (near[..., 1] <= car_racing.WINDOW_H + m)
        ).any(axis=1)
        for i in touches[inside]:
            poly = [tuple(v) for v in screen[i].tolist()]
            color = colors(maybe[i])
            gfxdraw.aapolygon(self.surf, poly, color)
            gfxdraw.filled_polygon(self.surf, poly, color)

    def _draw_field(self, zoom: float, translation, angle: float) -> None:
        """The background square. Once the camera has zoomed in it covers the whole surface,
        and filling every pixel is what ``filled_polygon`` would do, at a fifth of the cost
        (it was the single most expensive draw call of a frame)."""
        b = car_racing.PLAYFIELD
        field = np.array([(b, b), (b, -b), (-b, -b), (-b, b)], dtype=np.float64)
        screen = to_screen(field, zoom, translation, angle)
        if covers_surface(screen, car_racing.WINDOW_W, car_racing.WINDOW_H):
            self.surf.fill([int(c) for c in self.bg_color])
            return
        poly = [tuple(v) for v in screen.tolist()]
        gfxdraw.aapolygon(self.surf, poly, self.bg_color)
        gfxdraw.filled_polygon(self.surf, poly, self.bg_color)

    def _render_road(self, zoom, translation, angle):
        self._draw_field(zoom, translation, angle)
        grass_color = self.grass_color
        self._draw_batch(self._GRASS, lambda i: grass_color, zoom, translation, angle)
        if self._road is None or len(self._road.vertices) != len(self.road_poly):
            self._road = _Polygons(np.array([p for p, _ in self.road_poly], dtype=np.float64))
        road = self.road_poly  # tile colours change as tiles are visited: read them now
        self._draw_batch(
            self._road,
            lambda i: [int(c) for c in road[i][1]],
            zoom,
            translation,
            angle,
        )


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_env(ENV_ID, "wmkit_fastcar:FastCarRacing", max_episode_steps=1000)
